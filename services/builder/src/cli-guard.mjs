// Runs one command as the leader of its own process group and takes the whole group
// down when the process that started it dies (even by SIGKILL): the parent holds an
// IPC channel to this process, and the channel closing is the signal.
//
//   node cli-guard.mjs <script> [args...]   (spawned detached, with an 'ipc' stdio slot)
//
// The builder uses it for the Dev Containers CLI, so neither the CLI nor the
// `docker build` it runs outlives a killed builder.
import { spawn } from 'node:child_process';

const [script, ...args] = process.argv.slice(2);
const killGroup = () => {
  try {
    process.kill(-process.pid, 'SIGKILL');
  } catch {
    process.exit(137);
  }
};
process.on('disconnect', killGroup);
const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
child.on('error', (err) => {
  process.stderr.write(`cli-guard: ${err.message}\n`);
  process.exit(127);
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
