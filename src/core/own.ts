/**
 * Objects built from keys a repository, a playbook or an argument chose. `obj[key] = value` with the
 * key `__proto__` replaces the object's prototype instead of adding the key (the value is then
 * lost, or its members seem to be in the object); defining the property makes it plain data.
 */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

/** `obj[key]` if `obj` has it itself; never a member every object inherits (`constructor`, `__proto__`). */
export function getOwn(obj: object, key: string): unknown {
  return Object.hasOwn(obj, key) ? (obj as Record<string, unknown>)[key] : undefined;
}
