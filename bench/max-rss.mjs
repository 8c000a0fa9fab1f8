// Preloaded into a measured process (NODE_OPTIONS=--import): when it exits, writes its peak RSS
// (KB) and CPU time (user + system, ms) to $BENCH_RSS_FILE, so the bench reads the whole
// process's figures without an external tool. Plain JavaScript: it must load in a process that
// has no TypeScript loader.
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_RSS_FILE;
if (file)
  process.on('exit', () => {
    const u = process.resourceUsage();
    writeFileSync(file, `${u.maxRSS} ${(u.userCPUTime + u.systemCPUTime) / 1000}`);
  });
