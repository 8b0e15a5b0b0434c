// Loaded with `NODE_OPTIONS=--import <this file>` (which refuses `--cpu-prof`): records a V8
// CPU profile of the whole process and writes it to $CODEBAY_CPU_PROF_DIR/<name>-<pid>.cpuprofile
// when the process exits (chrome://inspect, speedscope or bench/lib/profile-top.ts read it).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { basename, join } from 'node:path';

const dir = process.env.CODEBAY_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  process.on('exit', () => {
    // A session on the main thread answers synchronously, so this runs before the process ends.
    session.post('Profiler.stop', (err, result) => {
      if (err) return;
      const name = basename(process.argv[1] ?? 'node').replace(/\.[cm]?[jt]s$/, '');
      writeFileSync(join(dir, `${name}-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
