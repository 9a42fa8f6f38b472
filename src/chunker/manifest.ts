/**
 * Manifest: what a model version is, byte for byte.
 *
 * A version is an ordered list of files cut into fixed-size chunks (small files packed together, see
 * ChunkLayout; an empty file has none), plus its directories with their modes, and a
 * *revision*: a digest of the origin's identity of the version's files when the seeder started pulling it
 * (sizes, mtimes, HDFS file ids), so the same NAME@VERSION re-published with other bytes is another
 * header, never a mix of the two (format 2 added those; format 3 packs small files into shared chunks). The *header* (name, version, revision,
 * chunk size, files, directories) is
 * known as soon as a pull starts; chunk hashes follow as they are computed. Both have a canonical byte
 * encoding (compact JSON, fixed key order, files sorted by path) and are identified by the SHA-256 of
 * those bytes, so two parties agree on an id without agreeing on anything else. Decoding accepts only
 * canonical bytes, so an id can never be forged by reformatting.
 */
import { createHash } from 'node:crypto'
import { ManifestError } from '../errors.ts'
import { isValidName, isValidVersion } from '../model-version.ts'

export const MANIFEST_FORMAT = 'modelswarm-manifest/3'
export const HASH_BYTES = 32
export const MIN_CHUNK_SIZE = 1024
export const MAX_CHUNK_SIZE = 1024 * 1024 * 1024
/** Bounds what a hostile manifest can make a decoder allocate. */
export const MAX_CHUNKS = 1_000_000
export const MAX_FILES = 100_000
export const MAX_MANIFEST_BYTES = 128 * 1024 * 1024
const MAX_PATH_LENGTH = 4096

export interface ManifestFile {
  /** Relative POSIX path inside the model directory. */
  readonly path: string
  readonly size: number
  /** Permission bits, 0..0o777. */
  readonly mode: number
}

export interface ManifestDir {
  /** Relative POSIX path inside the model directory. */
  readonly path: string
  /** Permission bits, 0..0o777. */
  readonly mode: number
}

export interface ManifestHeader {
  readonly name: string
  readonly version: string
  /** Lowercase hex digest of the origin identity the version was pulled from; '' when made from local files. */
  readonly revision: string
  readonly chunkSize: number
  /** Sorted by path; chunks run over them in this order. */
  readonly files: readonly ManifestFile[]
  /** Every directory of the version, sorted by path, with its mode. */
  readonly dirs: readonly ManifestDir[]
}

/** What a header is made from: revision and directories may be left out (none). */
export type HeaderInit = Omit<ManifestHeader, 'revision' | 'dirs'> & Partial<Pick<ManifestHeader, 'revision' | 'dirs'>>

export interface Manifest extends ManifestHeader {
  /** SHA-256 of every chunk, in chunk order. */
  readonly chunks: readonly Uint8Array[]
}

/** One piece of a chunk: `length` bytes at `offset` of file `file` (an index into the header's files), at byte `at` of the chunk. */
export interface Span {
  readonly file: number
  readonly offset: number
  readonly length: number
  readonly at: number
}

/**
 * Where each chunk lives. Derived from a header, never stored.
 *
 * Files run through the chunks in path order. A file of at least one chunk size starts a chunk of its own and
 * fills whole chunks (its last may be short), so an unchanged large file has the same chunks in every version
 * (BEP 52 aligns every file for that reason). Smaller files are packed whole, in order, into shared chunks
 * (as BitTorrent v1 packs files into pieces) and never split: as one chunk each, 5,000 files of 1–4 KiB took
 * 14.7× the time of the same bytes as one file (bench:small-files), all of it per-chunk cost.
 */
export interface ChunkLayout {
  readonly count: number
  readonly totalSize: number
  /** Per chunk: its length in bytes. */
  readonly length: Uint32Array
  /** Per chunk `i`: its spans are the entries `spanStart[i]` to `spanStart[i + 1] - 1` of the span arrays, in byte order. */
  readonly spanStart: Uint32Array
  readonly spanFile: Uint32Array
  readonly spanOffset: Float64Array
  readonly spanLength: Uint32Array
  /** Per file `f`: its bytes are in chunks `firstChunk[f]` to `endChunk[f] - 1` (none for an empty file). */
  readonly firstChunk: Uint32Array
  readonly endChunk: Uint32Array
}

/** Whether a file is packed whole into a chunk shared with other small files (see ChunkLayout). */
export function isPacked (file: ManifestFile, chunkSize: number): boolean {
  return file.size > 0 && file.size < chunkSize
}

export function chunkLayout (header: ManifestHeader): ChunkLayout {
  const { chunkSize, files } = header
  // Two passes over the files: one to size the arrays, one to fill them.
  const place = (onChunk: () => void, onSpan: (file: number, offset: number, length: number) => void): void => {
    let packed = 0 // bytes in the open shared chunk; 0 when there is none
    files.forEach((f, fi) => {
      if (f.size >= chunkSize) {
        packed = 0
        for (let off = 0; off < f.size; off += chunkSize) {
          onChunk()
          onSpan(fi, off, Math.min(chunkSize, f.size - off))
        }
      } else if (isPacked(f, chunkSize)) {
        if (packed === 0 || packed + f.size > chunkSize) {
          onChunk()
          packed = 0
        }
        packed += f.size
        onSpan(fi, 0, f.size)
      }
    })
  }
  let count = 0
  let spans = 0
  place(() => count++, () => spans++)
  const length = new Uint32Array(count)
  const spanStart = new Uint32Array(count + 1)
  const spanFile = new Uint32Array(spans)
  const spanOffset = new Float64Array(spans)
  const spanLength = new Uint32Array(spans)
  const firstChunk = new Uint32Array(files.length)
  const endChunk = new Uint32Array(files.length)
  let chunk = -1
  let span = 0
  let totalSize = 0
  place(() => { spanStart[++chunk] = span }, (file, offset, len) => {
    if (offset === 0) firstChunk[file] = chunk
    endChunk[file] = chunk + 1
    spanFile[span] = file
    spanOffset[span] = offset
    spanLength[span++] = len
    length[chunk]! += len
    totalSize += len
  })
  spanStart[count] = spans
  // Empty files hold no chunk: an empty range at the next file's first chunk.
  for (let fi = files.length - 1, next = count; fi >= 0; fi--) {
    if (files[fi]!.size === 0) firstChunk[fi] = endChunk[fi] = next
    else next = firstChunk[fi]!
  }
  return { count, totalSize, length, spanStart, spanFile, spanOffset, spanLength, firstChunk, endChunk }
}

/** The spans of chunk `index`, in byte order. */
export function spansOf (layout: ChunkLayout, index: number): Span[] {
  const out: Span[] = []
  let at = 0
  for (let s = layout.spanStart[index]!; s < layout.spanStart[index + 1]!; s++) {
    out.push({ file: layout.spanFile[s]!, offset: layout.spanOffset[s]!, length: layout.spanLength[s]!, at })
    at += layout.spanLength[s]!
  }
  return out
}

/** The distinct files chunk `index` holds bytes of. */
export function filesOf (layout: ChunkLayout, index: number): number[] {
  return spansOf(layout, index).map(s => s.file)
}

export function encodeHeader (header: ManifestHeader): Uint8Array {
  return Buffer.from(JSON.stringify(headerObject(header)))
}

export function encodeManifest (manifest: Manifest): Uint8Array {
  return Buffer.from(JSON.stringify({ ...headerObject(manifest), chunks: manifest.chunks.map(hex) }))
}

/** Hex SHA-256 of the canonical header bytes. */
export function headerId (header: ManifestHeader): string {
  return sha256Hex(encodeHeader(header))
}

/** Hex SHA-256 of the canonical manifest bytes. */
export function manifestId (manifest: Manifest): string {
  return sha256Hex(encodeManifest(manifest))
}

export function decodeHeader (bytes: Uint8Array): ManifestHeader {
  const obj = parseCanonicalJson(bytes, 'version header')
  const header = validateHeader(obj, HEADER_KEYS)
  requireCanonical(bytes, encodeHeader(header), 'version header')
  return header
}

export function decodeManifest (bytes: Uint8Array): Manifest {
  const obj = parseCanonicalJson(bytes, 'manifest')
  const header = validateHeader(obj, [...HEADER_KEYS, 'chunks'])
  const chunks = obj.chunks
  if (!Array.isArray(chunks)) throw new ManifestError('manifest: "chunks" must be an array of hex SHA-256 strings')
  const { count } = chunkLayout(header)
  if (chunks.length !== count) throw new ManifestError(`manifest: files need ${count} chunks of ${header.chunkSize} bytes but ${chunks.length} hashes are listed`)
  const hashes = chunks.map((h, i) => {
    if (typeof h !== 'string' || !/^[0-9a-f]{64}$/.test(h)) throw new ManifestError(`manifest: chunk ${i} hash is not 64 lowercase hex digits`)
    return Uint8Array.from(Buffer.from(h, 'hex'))
  })
  const manifest: Manifest = { ...header, chunks: hashes }
  requireCanonical(bytes, encodeManifest(manifest), 'manifest')
  return manifest
}

/** Builds a header after validating it, so code never holds a header that could not be decoded. */
export function createHeader (header: HeaderInit): ManifestHeader {
  const files = [...header.files].sort((a, b) => comparePaths(a.path, b.path))
  const dirs = [...header.dirs ?? []].sort((a, b) => comparePaths(a.path, b.path))
  return validateHeader({ format: MANIFEST_FORMAT, name: header.name, version: header.version, revision: header.revision ?? '', chunkSize: header.chunkSize, files, dirs }, HEADER_KEYS)
}

export function createManifest (header: HeaderInit, chunks: readonly Uint8Array[]): Manifest {
  const h = createHeader(header)
  const { count } = chunkLayout(h)
  if (chunks.length !== count) throw new ManifestError(`manifest needs ${count} chunk hashes, got ${chunks.length}`)
  chunks.forEach((c, i) => { if (c.length !== HASH_BYTES) throw new ManifestError(`chunk ${i} hash has ${c.length} bytes, expected ${HASH_BYTES}`) })
  return { ...h, chunks }
}

/** Code-unit order, the same in every JavaScript engine and independent of locale. */
export function comparePaths (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export function sha256Hex (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

function hex (b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
}

const HEADER_KEYS = ['format', 'name', 'version', 'revision', 'chunkSize', 'files', 'dirs'] as const

function headerObject (h: ManifestHeader): object {
  return {
    format: MANIFEST_FORMAT,
    name: h.name,
    version: h.version,
    revision: h.revision,
    chunkSize: h.chunkSize,
    files: h.files.map(f => ({ path: f.path, size: f.size, mode: f.mode })),
    dirs: h.dirs.map(d => ({ path: d.path, mode: d.mode }))
  }
}

function parseCanonicalJson (bytes: Uint8Array, what: string): Record<string, unknown> {
  if (bytes.length > MAX_MANIFEST_BYTES) throw new ManifestError(`${what}: ${bytes.length} bytes exceeds the ${MAX_MANIFEST_BYTES}-byte limit`)
  let obj: unknown
  try {
    obj = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch (err) {
    throw new ManifestError(`${what}: not valid JSON (${(err as Error).message})`, { cause: err })
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new ManifestError(`${what}: must be a JSON object`)
  return obj as Record<string, unknown>
}

function requireCanonical (given: Uint8Array, canonical: Uint8Array, what: string): void {
  if (!Buffer.from(given.buffer, given.byteOffset, given.byteLength).equals(canonical)) {
    throw new ManifestError(`${what}: bytes are not in canonical form (compact JSON, fixed key order)`)
  }
}

function validateHeader (obj: Record<string, unknown>, keys: readonly string[]): ManifestHeader {
  for (const k of Object.keys(obj)) if (!keys.includes(k)) throw new ManifestError(`unknown field "${k}"`)
  if (obj.format !== MANIFEST_FORMAT) throw new ManifestError(`unsupported format ${JSON.stringify(obj.format)}, expected "${MANIFEST_FORMAT}"`)
  const { name, version, revision, chunkSize, files, dirs } = obj
  if (!isValidName(name)) throw new ManifestError(`invalid model name ${JSON.stringify(name)}: use letters, digits, '.', '_', '-' (max 128)`)
  if (!isValidVersion(version)) {
    throw new ManifestError(`invalid version ${JSON.stringify(version)}: use letters, digits, '.', '_', ':', '+', '-' (max 128); "latest" is reserved`)
  }
  if (typeof revision !== 'string' || !/^[0-9a-f]{0,64}$/.test(revision)) throw new ManifestError(`invalid revision ${JSON.stringify(revision)}: at most 64 lowercase hex digits`)
  if (!isInt(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new ManifestError(`invalid chunk size ${JSON.stringify(chunkSize)}: must be an integer from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE}`)
  }
  if (!Array.isArray(files)) throw new ManifestError('"files" must be an array')
  if (files.length > MAX_FILES) throw new ManifestError(`${files.length} files exceeds the limit of ${MAX_FILES}`)
  const seen = new Set<string>()
  let chunkCount = 0
  const out = files.map((f: unknown, i): ManifestFile => {
    if (f === null || typeof f !== 'object' || Array.isArray(f)) throw new ManifestError(`file ${i} must be an object`)
    const { path, size, mode, ...rest } = f as Record<string, unknown>
    const extra = Object.keys(rest)
    if (extra.length > 0) throw new ManifestError(`file ${i}: unknown field "${extra[0]}"`)
    if (typeof path !== 'string') throw new ManifestError(`file ${i}: path must be a string`)
    checkPath(path, i)
    if (seen.has(path)) throw new ManifestError(`file ${i}: duplicate path "${path}"`)
    seen.add(path)
    if (!isInt(size) || size < 0) throw new ManifestError(`file "${path}": size must be a non-negative integer`)
    if (!isInt(mode) || mode < 0 || mode > 0o777) throw new ManifestError(`file "${path}": mode must be permission bits 0..0o777`)
    // An upper bound (small files share chunks), so a hostile header is refused before any layout is built.
    chunkCount += Math.ceil(size / chunkSize)
    if (chunkCount > MAX_CHUNKS) throw new ManifestError(`more than ${MAX_CHUNKS} chunks: raise the chunk size`)
    return { path, size, mode }
  })
  for (let i = 1; i < out.length; i++) {
    if (comparePaths(out[i - 1]!.path, out[i]!.path) >= 0) throw new ManifestError(`files must be sorted by path: "${out[i - 1]!.path}" comes before "${out[i]!.path}"`)
  }
  // A path that is both a file and a parent directory of another file cannot be written.
  for (const p of seen) {
    for (let j = p.indexOf('/'); j !== -1; j = p.indexOf('/', j + 1)) {
      if (seen.has(p.slice(0, j))) throw new ManifestError(`"${p.slice(0, j)}" is both a file and the directory of "${p}"`)
    }
  }
  return { name, version, revision, chunkSize, files: out, dirs: validateDirs(dirs, seen) }
}

function validateDirs (dirs: unknown, files: ReadonlySet<string>): ManifestDir[] {
  if (!Array.isArray(dirs)) throw new ManifestError('"dirs" must be an array')
  if (dirs.length > MAX_FILES) throw new ManifestError(`${dirs.length} directories exceeds the limit of ${MAX_FILES}`)
  const out = dirs.map((d: unknown, i): ManifestDir => {
    if (d === null || typeof d !== 'object' || Array.isArray(d)) throw new ManifestError(`directory ${i} must be an object`)
    const { path, mode, ...rest } = d as Record<string, unknown>
    if (Object.keys(rest).length > 0) throw new ManifestError(`directory ${i}: unknown field "${Object.keys(rest)[0]}"`)
    if (typeof path !== 'string') throw new ManifestError(`directory ${i}: path must be a string`)
    checkPath(path, i)
    if (files.has(path)) throw new ManifestError(`"${path}" is both a file and a directory`)
    if (!isInt(mode) || mode < 0 || mode > 0o777) throw new ManifestError(`directory "${path}": mode must be permission bits 0..0o777`)
    return { path, mode }
  })
  for (let i = 1; i < out.length; i++) {
    if (comparePaths(out[i - 1]!.path, out[i]!.path) >= 0) throw new ManifestError(`directories must be sorted by path, without duplicates: "${out[i - 1]!.path}" comes before "${out[i]!.path}"`)
  }
  return out
}

function checkPath (path: string, i: number): void {
  const bad = (why: string): never => { throw new ManifestError(`file ${i}: path ${JSON.stringify(path)} ${why}`) }
  if (path.length === 0 || path.length > MAX_PATH_LENGTH) bad(`must be 1..${MAX_PATH_LENGTH} characters`)
  if (path.startsWith('/')) bad('must be relative')
  // Control characters and backslashes would let a path mean different things on different hosts.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(path)) bad('contains a control character or backslash')
  for (const seg of path.split('/')) {
    if (seg === '') bad('has an empty segment')
    if (seg === '.' || seg === '..') bad('contains "." or ".." and could escape the output directory')
  }
}

function isInt (v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v)
}
