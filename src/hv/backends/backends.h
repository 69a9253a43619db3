/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Constructors of the built-in backends, dispatched by backend.c. */
#ifndef OVMC_BACKENDS_H
#define OVMC_BACKENDS_H

#include <openvmc/backend.h>

/* `args`: what follows "name:" in the specification, or NULL. */
int ovmc_backend_echo_new(const char *args, struct ovmc_backend *out);

#endif
