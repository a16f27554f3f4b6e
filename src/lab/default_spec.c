/* default_spec: GENERATED from experiments/papaya.ini, equal byte for byte
 * (tests/unit/test_lab_spec.c checks). After editing the .ini, regenerate from the source dir:
 *   python3 -c "exec(open('src/lab/default_spec.c').read().split('GEN' 'ERATOR')[1][:-3])"
 * GENERATOR
import json
t = open('experiments/papaya.ini').read()
h = open('src/lab/default_spec.c').read().split('\n#include')[0] + '\n'
b = ''.join('\t' + json.dumps(l).replace('\\u00', '\\x') + '\n' for l in t.splitlines(True))
open('src/lab/default_spec.c', 'w').write(h + '#include "lab/default_spec.h"\n\nconst char default_spec_text[] =\n' + b[:-1] + ';\n')
 * GENERATOR */
#include "lab/default_spec.h"

const char default_spec_text[] =
	"; papaya: the papayachat question, completed (the default experiment of `ctxlab run`).\n"
	"; papayachat measured a process-per-connection chat server against Go's net/http with top,\n"
	"; at 1, 2 and 4 CPUs and 1 to 64 clients. Here every engine serves the same protocol code,\n"
	"; the whole server tree is measured, and every figure has a spread.\n"
	"; Budget: <= 10 minutes on a 2-core machine (short trials, all axes kept).\n"
	"\n"
	"[experiment]\n"
	"name = papaya\n"
	"question = How costly are kernel context switches? A process per connection (fork, papayachat's design),\n"
	"  a thread per connection, an event loop (epoll), coroutines (coro) and Go's user-space scheduler\n"
	"  serve the same protocol: how much server CPU, how many context switches and what latency does\n"
	"  each need as connections grow, and does having more cores make one model more efficient?\n"
	"repeat = 3\n"
	"warmup = 500ms\n"
	"duration = 1s\n"
	"; flame graphs per cell: `ctxlab run --profile` (off here: profiling the first repeat made\n"
	"; the run 11.4 min instead of ~8 on a 2-core machine, over the 10-minute budget)\n"
	"profile = off\n"
	"; precision (default 5%) on, but the whole run's budget stays under 10 minutes: the fixed\n"
	"; rounds take ~8, the extra rounds by precision get what is left of 570 s (9.5 min)\n"
	"budget = 570s\n"
	"\n"
	"[server]\n"
	"engine = fork thread epoll coro go\n"
	"proto = sink http\n"
	"cpus = 1 all\n"
	"\n"
	"[load]\n"
	"connections = 1 4 16 64 256\n"
	"\n"
	"; papayachat's load: every client sends at 1 Mbps\n"
	"[load.sink]\n"
	"bandwidth = 1Mbps\n"
	"size = 1k\n"
	"\n"
	"; http: closed loop (each connection sends its next request when the response arrives)\n"
	"\n"
	"[hosts]\n"
	"server = local\n"
	"load = local\n";
