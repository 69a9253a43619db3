// SPDX-License-Identifier: GPL-2.0-or-later
/* A statically linked program: vmc-run must refuse it (the preload tests). */
#include <stdio.h>

int main(void)
{
	puts("a static program ran");
	return 0;
}
