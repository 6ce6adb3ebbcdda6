// The `profiles` read model: each user with what they spent on orders.
//
// Functions named after an event type apply that type's events (of any domain or resource
// type); `queries` holds the named queries (query API version 1). Tables:
//   users:     user id -> {email, name, createdAt}
//   orders:    order id -> {customerId}            (an order's customer, from OrderCreated)
//   customers: customer id -> {orderCount, lifetimeValueCents}   (paid orders only)
// A customer's orders may be paid before (or without) a user of that id: the figures are
// kept by customer id and joined with the user when asked.

function UserCreated(event, ctx) {
  const doc = event.data.document;
  ctx.put('users', event.id, {email: doc.email, name: doc.name, createdAt: event.recordedAt});
}

function UserReplaced(event, ctx) {
  const user = ctx.get('users', event.id);
  if (user === null) return;
  const doc = event.data.document;
  ctx.put('users', event.id, {email: doc.email, name: doc.name, createdAt: user.createdAt});
}

// The RFC 6902 operations a patch applied: only `name` and `email` matter here, both
// top-level members that stay present (the schema requires them).
function UserPatched(event, ctx) {
  const user = ctx.get('users', event.id);
  if (user === null) return;
  for (const op of event.data.patch) {
    if ((op.op === 'add' || op.op === 'replace') && (op.path === '/name' || op.path === '/email')) {
      user[op.path.slice(1)] = op.value;
    }
  }
  ctx.put('users', event.id, user);
}

function UserDeleted(event, ctx) {
  ctx.delete('users', event.id);
}

function OrderCreated(event, ctx) {
  ctx.put('orders', event.data.orderId, {customerId: event.data.customerId});
}

function OrderPaid(event, ctx) {
  const order = ctx.get('orders', event.data.orderId);
  if (order === null) return;
  const customer = ctx.get('customers', order.customerId) || {orderCount: 0, lifetimeValueCents: 0};
  customer.orderCount += 1;
  customer.lifetimeValueCents += event.data.amountCents;
  ctx.put('customers', order.customerId, customer);
}

const queries = {
  // userProfile?id=: the user with their paid orders; 404 (null) if there is no such user.
  userProfile({id}, ctx) {
    if (typeof id !== 'string' || id === '') return null;
    const user = ctx.get('users', id);
    if (user === null) return null;
    const spent = ctx.get('customers', id) || {orderCount: 0, lifetimeValueCents: 0};
    return {
      id,
      email: user.email,
      name: user.name,
      orderCount: spent.orderCount,
      lifetimeValueCents: spent.lifetimeValueCents,
      createdAt: user.createdAt,
    };
  },
};
