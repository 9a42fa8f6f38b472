/** Writes the options table into README.md between its markers: `npm run docs:options`. */
import { readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { optionsMarkdown } from './options.ts'

export const README = fileURLToPath(new URL('../../README.md', import.meta.url))
const START = '<!-- options:start -->'
const END = '<!-- options:end -->'

/** README text with the generated table between the markers. */
export function withOptionsTable (readme: string): string {
  const a = readme.indexOf(START)
  const b = readme.indexOf(END)
  if (a < 0 || b < a) throw new Error(`README.md lacks the ${START} … ${END} markers`)
  return `${readme.slice(0, a + START.length)}\n${optionsMarkdown()}\n${readme.slice(b)}`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(README, withOptionsTable(await readFile(README, 'utf8')))
}
