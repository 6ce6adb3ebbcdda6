// Runs in every fresh context, in strict mode, before any query code. Returns the `Date`
// queries see: as usual with a time (`new Date(counter.createdAt)`), throwing where the
// host's would read the clock (`new Date()`, `Date()`), so that a query's result depends
// only on its code, its args and the snapshot. The host wires it up (see `vm.rs`). It is
// the only JavaScript here: each function QuickJS parses costs about 8 µs per context.
(function (HostDate, noClock) {
  return function Date(...values) {
    if (new.target === undefined || values.length === 0) noClock();
    return Reflect.construct(HostDate, values, new.target);
  };
})
