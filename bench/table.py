#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# The Markdown tables of docs/performance.md from an ovmc-bench CSV:
#   bench/table.py build-bench/bench.csv
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def get(mode, path, metric, size):
    for r in rows:
        if r['mode']==mode and r['path']==path and r['metric']==metric and int(r['size'])==size:
            return r
    return None
def cell(r, ratio=True):
    if not r: return '-'
    s = '%.1f' % float(r['median']) if float(r['median'])>=1 or r['unit']!='us' else '%.2f' % float(r['median'])
    if ratio and r['ratio']:
        s += ' (%.2fx%s)' % (float(r['ratio']), '' if not r['met'] else (', met' if r['met']=='yes' else ', **not met**'))
    return s
for mode in ['pinned','unpinned']:
    if not get(mode,'memcpy','rtt',32): continue
    print('**%s**: median round trip in us (ratio to the floor; target)\n' % mode)
    print('| path | 32 B | 256 B | 4 KiB | 16 KiB | target |')
    print('|---|---|---|---|---|---|')
    names={'memcpy':'memcpy (floor of core)','socketpair':'socketpair SEQPACKET (floor)','bare-fuse':'bare FUSE echo file (floor)','core':'core to core / memcpy','openvmc':'`openvmc` / bare FUSE','daemons':'`openvmcd` + `openvmc-hvd` / bare FUSE'}
    tg={'openvmc':'<= 1.10x','daemons':'<= 1.60x'}
    for p in ['memcpy','socketpair','bare-fuse','core','openvmc','daemons']:
        print('| %s | %s | %s |' % (names[p], ' | '.join(cell(get(mode,p,'rtt',s), p in ('openvmc','daemons')) for s in (32,256,4096,16384)), tg.get(p,'')))
    print()
    print('| 4 KiB throughput, MiB/s | bare FUSE | `openvmc` | daemons | socketpair |')
    print('|---|---|---|---|---|')
    print('| writer + reader thread on one fd | %s | %s | %s | %s |' % (cell(get(mode,'bare-fuse','tput',4096)), cell(get(mode,'openvmc','tput',4096)), cell(get(mode,'daemons','tput',4096)), cell(get(mode,'socketpair','tput',4096))))
    print()
    print('| 32 B round trip of one session, us | lone | 63 others idle | paced | saturated |')
    print('|---|---|---|---|---|')
    for p,n in (('openvmc','`openvmc`'),('daemons','daemons')):
        print('| %s | %s | %s | %s | %s |' % (n, cell(get(mode,p,'rtt-lone',32)), cell(get(mode,p,'rtt64-idle',32)), cell(get(mode,p,'rtt64-paced',32)), cell(get(mode,p,'rtt64-saturated',32))))
    print()
    print('| daemon | CPU over the idle window, ms | resident, MiB |')
    print('|---|---|---|')
    for p in ('openvmc','openvmcd','openvmc-hvd'):
        print('| `%s` | %s | %s |' % (p, cell(get(mode,p,'idle-cpu',0)), cell(get(mode,p,'rss',0))))
    print()
