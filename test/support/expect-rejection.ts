/**
 * The error a promise rejects with, after asserting it is an instance of `type` (a promise that resolves fails
 * the assertion too). For the properties a `.rejects` matcher would have to check one at a time.
 */
export async function rejectsWith<T>(
  p: Promise<unknown>,
  type: abstract new (...args: never[]) => T,
): Promise<T> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(type);
  return err as T;
}
