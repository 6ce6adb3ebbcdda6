//! The benchmark mix (`writ_orders::workload`) run through the domain and its process
//! in memory, a small reference of what the engine does: every step ends as its
//! `expected` says, the totals are `expected_counts`, every order ends in its fate, and
//! the products' stock adds up.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::Value;
use uuid::Uuid;
use writ_domain::{
    Decision, Domain, Envelope, EventSet, EventView, Issued, Reactions, Refusal, Streams, TimerOp,
    react_to,
};
use writ_orders::workload::{self, Counts, Expected, Fate};
use writ_orders::{
    FulfilmentEvent, OrderEvent, OrderFulfilment, OrderStatus, Orders, OrdersState, codes,
};

/// The streams' states, and what the run did.
#[derive(Default)]
struct Sim {
    streams: HashMap<String, (OrdersState, u64)>,
    /// Pending timers by key (the process has one per order).
    timers: BTreeMap<String, Issued>,
    /// `OrderCancelled` reasons by order stream, all of them.
    cancel_reasons: HashMap<String, Vec<String>>,
    counts: Counts,
    sequence: u64,
}

struct View<'a> {
    streams: &'a HashMap<String, (OrdersState, u64)>,
    empty: OrdersState,
}

impl Streams<Orders> for View<'_> {
    fn load(&mut self, stream: &str) -> Result<(&OrdersState, u64), String> {
        Ok(self
            .streams
            .get(stream)
            .map_or((&self.empty, 0), |(state, version)| (state, *version)))
    }
}

impl Sim {
    /// Decides one command and applies its events; returns what the process issued.
    fn execute(&mut self, name: &str, payload: &[u8]) -> Result<Vec<Issued>, Refusal> {
        let decoded = Orders::commands()
            .decode(name, None, payload)
            .unwrap_or_else(|e| panic!("{name} {}: {e}", String::from_utf8_lossy(payload)));
        assert_eq!(decoded.canonical_payload, payload, "{name} is canonical");
        let command = decoded.command;
        let target = Orders::stream(&command).into_owned();
        let (state, version) = self.streams.get(&target).cloned().unwrap_or_default();
        self.sequence += 1;
        let envelope = Envelope {
            command_id: Uuid::from_u128(u128::from(self.sequence)),
            recorded_at_ms: 1_000_000,
            sequence: self.sequence,
            correlation_id: Uuid::from_u128(u128::from(self.sequence)),
        };
        let mut view = View {
            streams: &self.streams,
            empty: OrdersState::default(),
        };
        let mut decision = Decision::new(&envelope, &target, &state, version, &mut view);
        Orders::decide(&mut decision, &command)?;
        let recorded = decision.into_recorded();
        let mut reactions = Reactions::new();
        for (index, (stream, event)) in recorded.into_iter().enumerate() {
            let stream = stream.unwrap_or_else(|| target.clone());
            let entry = self.streams.entry(stream.clone()).or_default();
            Orders::evolve(&mut entry.0, &event);
            entry.1 += 1;
            self.counts.events += 1;
            if let OrderEvent::OrderCancelled(e) = &event {
                self.cancel_reasons
                    .entry(stream.clone())
                    .or_default()
                    .push(e.reason.clone());
            }
            if FulfilmentEvent::EVENT_TYPES.contains(&event.event_type()) {
                let mut data = Vec::new();
                event.encode_data(&mut data).unwrap();
                let view = EventView {
                    event_type: event.event_type(),
                    data: &data,
                    stream: &stream,
                    version: entry.1,
                    position: self.counts.events,
                    index: index as u32,
                    command_id: envelope.command_id,
                    correlation_id: envelope.correlation_id,
                    recorded_at_ms: envelope.recorded_at_ms,
                };
                react_to::<OrderFulfilment>(&view, &mut reactions).unwrap();
            }
        }
        let (issued, timers) = reactions.take();
        for op in timers {
            match op {
                TimerOp::Schedule { key, command, .. } => {
                    self.timers.insert(key, command);
                }
                TimerOp::Cancel { key, .. } => {
                    self.timers.remove(&key);
                }
            }
        }
        Ok(issued)
    }

    /// Runs what a command issued, and what those issue, breadth first.
    fn run_issued(&mut self, issued: Vec<Issued>) {
        let mut queue = VecDeque::from(issued);
        while let Some(command) = queue.pop_front() {
            self.counts.process_commands += 1;
            let more = self
                .execute(&command.command, &command.payload)
                .unwrap_or_else(|r| panic!("{}: {r:?}", command.command));
            queue.extend(more);
        }
    }

    fn client(&mut self, step: &workload::Step) {
        assert_eq!(step.version, 1);
        self.counts.client_commands += 1;
        let outcome = self.execute(step.command, &step.payload);
        let what = || {
            format!(
                "{} {}",
                step.command,
                String::from_utf8_lossy(&step.payload)
            )
        };
        match (outcome, step.expected) {
            (Ok(issued), Expected::Succeeded) => self.run_issued(issued),
            (Err(Refusal::Rejected(r)), Expected::Rejected(code)) => {
                assert_eq!(r.code, code, "{}", what());
                self.counts.client_rejected += 1;
            }
            (outcome, expected) => panic!("{}: expected {expected:?}, got {outcome:?}", what()),
        }
    }

    /// Time passes: every pending timer fires.
    fn fire_timers(&mut self) {
        for (_, command) in std::mem::take(&mut self.timers) {
            self.counts.timer_commands += 1;
            let issued = self
                .execute(&command.command, &command.payload)
                .unwrap_or_else(|r| panic!("{}: {r:?}", command.command));
            self.run_issued(issued);
        }
    }

    fn state(&self, stream: &str) -> &OrdersState {
        &self.streams[stream].0
    }
}

/// Sends the mix of `orders` orders as a bench would: the stock first, then every order's
/// steps in sequence, the orders interleaved round-robin.
fn run(orders: u64) -> (Sim, Vec<Vec<workload::Step>>) {
    let mut sim = Sim::default();
    for step in workload::stock_steps(orders) {
        sim.client(&step);
    }
    let scripts: Vec<Vec<workload::Step>> = (0..orders).map(workload::order_steps).collect();
    let longest = scripts.iter().map(Vec::len).max().unwrap_or(0);
    for round in 0..longest {
        for script in &scripts {
            if let Some(step) = script.get(round) {
                sim.client(step);
            }
        }
    }
    (sim, scripts)
}

#[test]
fn the_mix_ends_as_expected_step_by_step_and_in_total() {
    const ORDERS: u64 = 2_000;
    let (mut sim, _) = run(ORDERS);
    let timed_out = (0..ORDERS)
        .filter(|n| Fate::of(*n) == Fate::TimedOut)
        .count();
    assert_eq!(
        sim.timers.len(),
        timed_out,
        "only the timed-out orders' timers are pending"
    );
    sim.fire_timers();
    assert_eq!(sim.counts, workload::expected_counts(ORDERS));
    for n in 0..ORDERS {
        let stream = workload::order_stream(n);
        let fate = Fate::of(n);
        let status = sim.state(&stream).order().unwrap().status();
        assert_eq!(status, fate.status(), "order {n}");
        let reasons = sim.cancel_reasons.get(&stream).cloned().unwrap_or_default();
        assert_eq!(
            reasons,
            fate.cancel_reason()
                .map(str::to_owned)
                .into_iter()
                .collect::<Vec<_>>(),
            "order {n}: exactly one OrderCancelled for a cancelled order"
        );
    }
}

#[test]
fn the_products_stock_adds_up_after_the_mix() {
    const ORDERS: u64 = 500;
    let (mut sim, scripts) = run(ORDERS);
    sim.fire_timers();
    // What the orders still hold, and what left with them, by product stream.
    let mut held: HashMap<String, u64> = HashMap::new();
    let mut shipped: HashMap<String, u64> = HashMap::new();
    for n in 0..ORDERS {
        let order = sim.state(&workload::order_stream(n)).order().unwrap();
        let into = match order.status() {
            status if status.holds_reservation() => &mut held,
            OrderStatus::Shipped => &mut shipped,
            _ => continue,
        };
        for line in order.lines() {
            *into
                .entry(writ_orders::product_stream(&line.sku))
                .or_default() += line.quantity;
        }
    }
    let mut restocked: HashMap<String, u64> = HashMap::new();
    for step in scripts.iter().flatten().filter(|s| s.command == "AddStock") {
        let payload: Value = serde_json::from_slice(&step.payload).unwrap();
        *restocked
            .entry(format!("product-{}", payload["sku"].as_str().unwrap()))
            .or_default() += payload["quantity"].as_u64().unwrap();
    }
    for k in 0..workload::PRODUCTS {
        let stream = workload::product_stream(k);
        let product = sim.state(&stream).product().unwrap();
        let get = |map: &HashMap<String, u64>| map.get(&stream).copied().unwrap_or(0);
        assert_eq!(
            product.on_hand(),
            workload::initial_stock(ORDERS) + get(&restocked) - get(&shipped),
            "{stream}"
        );
        assert_eq!(product.reserved(), get(&held), "{stream}");
        assert!(product.reserved() <= product.on_hand(), "{stream}");
    }
    assert!(
        !sim.streams
            .contains_key(&format!("product-{}", workload::UNSTOCKED_SKU)),
        "the unstocked sku was never reserved"
    );
}

#[test]
fn at_least_95_percent_of_client_commands_succeed() {
    for orders in [0, 1, 20, 99, 1_000, 10_000] {
        let counts = workload::expected_counts(orders);
        assert!(
            counts.client_rejected * 20 <= counts.client_commands,
            "{orders} orders: {counts:?}"
        );
    }
    let counts = workload::expected_counts(100);
    assert_eq!(counts.client_rejected, 3);
    let rejected: Vec<&str> = (0..100)
        .flat_map(workload::order_steps)
        .filter_map(|s| match s.expected {
            Expected::Rejected(code) => Some(code),
            Expected::Succeeded => None,
        })
        .collect();
    assert_eq!(rejected, [codes::AMOUNT_MISMATCH; 3]);
}

#[test]
fn the_fates_follow_the_documented_shares() {
    let mut by_fate: HashMap<Fate, u64> = HashMap::new();
    for n in 0..100 {
        *by_fate.entry(Fate::of(n)).or_default() += 1;
    }
    assert_eq!(by_fate[&Fate::Shipped], 60);
    assert_eq!(by_fate[&Fate::Paid], 10);
    assert_eq!(by_fate[&Fate::CancelledAwaitingPayment], 5);
    assert_eq!(by_fate[&Fate::CancelledPaid], 5);
    assert_eq!(by_fate[&Fate::CancelledDraft], 5);
    assert_eq!(by_fate[&Fate::TimedOut], 10);
    assert_eq!(by_fate[&Fate::OutOfStock], 5);
}

#[test]
fn orders_have_one_to_four_lines_of_distinct_skus() {
    let mut sizes = [0u64; 5];
    for n in 0..1_000 {
        let skus: Vec<String> = workload::order_steps(n)
            .iter()
            .filter(|s| s.command == "AddItem")
            .map(|s| {
                let payload: Value = serde_json::from_slice(&s.payload).unwrap();
                payload["sku"].as_str().unwrap().to_owned()
            })
            .collect();
        let removed = usize::from(n % 8 == 3);
        let lines = skus.len() - removed;
        assert!((1..=4).contains(&lines), "order {n}: {skus:?}");
        let mut distinct = skus.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), skus.len(), "order {n}: {skus:?}");
        sizes[lines] += 1;
    }
    assert!(sizes[1..].iter().all(|&count| count > 150), "{sizes:?}");
}
