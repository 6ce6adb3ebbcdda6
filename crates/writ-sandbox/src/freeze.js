// Runs once in a script VM's context, after the glue and before any script call: freezes
// every object reachable from the global object, and the built-in prototypes that are
// reachable only through syntax (generators, async functions, iterators), so that nothing a
// call does to a global or a built-in survives it (in strict mode, writing to a frozen
// object throws). Walks own properties of any key, accessors' functions and prototypes.
(function () {
  'use strict';
  const seen = new Set();
  const pending = [
    globalThis,
    Object.getPrototypeOf(function* () {}),
    Object.getPrototypeOf((function* () {})()),
    Object.getPrototypeOf(async function () {}),
    Object.getPrototypeOf(async function* () {}),
    Object.getPrototypeOf((async function* () {})()),
    Object.getPrototypeOf([][Symbol.iterator]()),
    Object.getPrototypeOf(new Map()[Symbol.iterator]()),
    Object.getPrototypeOf(new Set()[Symbol.iterator]()),
    Object.getPrototypeOf(''[Symbol.iterator]()),
    Object.getPrototypeOf(/x/[Symbol.matchAll]('')),
    (function () { return arguments; })(),
  ];
  while (pending.length > 0) {
    const value = pending.pop();
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null) continue;
    if (seen.has(value)) continue;
    seen.add(value);
    pending.push(Object.getPrototypeOf(value));
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Reflect.getOwnPropertyDescriptor(value, key);
      if (descriptor !== undefined) pending.push(descriptor.value, descriptor.get, descriptor.set);
    }
    Object.freeze(value);
  }
})
