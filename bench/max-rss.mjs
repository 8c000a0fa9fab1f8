// Preloaded into a measured process (NODE_OPTIONS=--import): writes the process's peak RSS (KB) to
// $KEEL_BENCH_RSS_FILE when it exits, so the bench reads the whole process's figure without an
// external tool. Plain JavaScript: it must load in a process that has no TypeScript loader.
import { writeFileSync } from 'node:fs';

const file = process.env.KEEL_BENCH_RSS_FILE;
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
