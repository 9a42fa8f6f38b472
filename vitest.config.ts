import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/hdfs/global-setup.ts', 'test/s3/global-setup.ts', 'test/support/fault-report-setup.ts'],
    // Integration tests start real processes and move real bytes; the 2-core CI box needs room.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Files that spawn swarms compete for the same 2 cores; run files one at a time.
    fileParallelism: false
  }
})
