// Activate, with a handler: the machine moves `status` to `active`, the handler stamps when.
function Activate(state, payload, ctx) {
  if (state.activatedAt !== undefined) reject('already_activated', 'a user is activated once');
  return {event: 'UserActivated', patch: [{op: 'add', path: '/activatedAt', value: String(ctx.now)}]};
}
