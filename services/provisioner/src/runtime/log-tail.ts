/**
 * An instance's last output lines for a failure reason: ANSI escapes and other control
 * characters dropped (`\r` ends a line), blank lines skipped, each line trimmed, the last
 * `max` (8) joined with ` | `. `text` must be the output itself — a Docker log already
 * demultiplexed (demuxDockerLog), a Kubernetes termination message — not framed bytes.
 */
export function lastLogLines(text: string, max = 8): string {
  return text
    .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '')
    .replace(/\r/g, '\n')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-max)
    .join(' | ');
}
