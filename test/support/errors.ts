/** The rejection of `p`, so a test can assert on its class and fields; fails if `p` resolves. */
export async function errorOf (p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}
