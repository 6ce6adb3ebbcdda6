//! The workload both sides run, and how its commands are dealt to clients.
//!
//! Command `i` (from 0) opens ticket `i` while `i < tickets`; after that it adds comment
//! `i / tickets` to ticket `i % tickets` (round-robin), exactly as `writ bench engine` does.
//!
//! Each of the `C` clients keeps up to `W` commands in flight (`--in-flight`), always on `W`
//! different tickets: it runs `W` *lanes*, and a lane runs its commands one at a time, each
//! waited for until it is durable. There are `L = C * W` lanes in all; lane `l` owns the
//! tickets `n` with `n % L == l` and runs their commands in the order above, so every ticket
//! is opened before its first comment, and no two commands on one ticket are ever in flight
//! together, on both sides. Client `k` runs the lanes `l` with `l % C == k`, which are the
//! lanes of its tickets `n % C == k`.

/// Most commands one run may have: the plan and the latencies take about 40 bytes each.
pub const COMMANDS_MAX: u64 = 10_000_000;

/// Most lanes (clients times commands in flight per client). The peer holds one PostgreSQL
/// connection per lane, and PostgreSQL refuses connections beyond its `max_connections`
/// (100 by default).
pub const CLIENTS_MAX: usize = 512;

/// The size and concurrency of a run. Build it with [`Workload::new`], which checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    tickets: u64,
    commands: u64,
    clients: usize,
    in_flight: usize,
}

/// Why [`Workload::new`] refused the numbers; fix the flag it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// `--tickets` was 0.
    #[error("--tickets must be at least 1")]
    NoTickets,
    /// `--commands` was below `--tickets`: every ticket needs its `OpenTicket`.
    #[error("--commands ({commands}) must be at least --tickets ({tickets})")]
    TooFewCommands {
        /// What was asked.
        commands: u64,
        /// What was asked.
        tickets: u64,
    },
    /// `--commands` above [`COMMANDS_MAX`].
    #[error("--commands ({commands}) must be at most {COMMANDS_MAX}")]
    TooManyCommands {
        /// What was asked.
        commands: u64,
    },
    /// `--clients` was 0, above [`CLIENTS_MAX`], or above `--tickets` (a client owns at
    /// least one ticket).
    #[error(
        "--clients ({clients}) must be between 1 and {CLIENTS_MAX} and at most --tickets ({tickets})"
    )]
    Clients {
        /// What was asked.
        clients: usize,
        /// What was asked.
        tickets: u64,
    },
    /// `--in-flight` was 0, or `--clients` times `--in-flight` is above [`CLIENTS_MAX`] or
    /// above `--tickets` (every lane owns at least one ticket).
    #[error(
        "--in-flight ({in_flight}) must be at least 1, and --clients ({clients}) times --in-flight at most {CLIENTS_MAX} and at most --tickets ({tickets})"
    )]
    InFlight {
        /// What was asked.
        in_flight: usize,
        /// What was asked.
        clients: usize,
        /// What was asked.
        tickets: u64,
    },
}

/// One command of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Its place in the workload (from 0); both sides derive the command id from it.
    pub index: u64,
    /// The ticket it addresses (ticket `n` has id `t-{n}`).
    pub ticket: u64,
    /// What it does.
    pub kind: StepKind,
}

/// What a [`Step`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// `OpenTicket` version 2: title `Ticket {n}`, reporter `bench`, priority `normal`.
    Open,
    /// `AddComment` version 1: author `bench`, text `Comment {comment} on ticket {n}`.
    Comment {
        /// The comment's number on its ticket, from 1.
        comment: u64,
    },
}

impl Workload {
    /// Checks the numbers: at least one ticket, at least one command per ticket, at most
    /// [`COMMANDS_MAX`] commands, and between 1 and `min(tickets, CLIENTS_MAX)` clients,
    /// each with one command in flight (see [`Workload::with_in_flight`]).
    pub fn new(tickets: u64, commands: u64, clients: usize) -> Result<Self, WorkloadError> {
        if tickets == 0 {
            return Err(WorkloadError::NoTickets);
        }
        if commands < tickets {
            return Err(WorkloadError::TooFewCommands { commands, tickets });
        }
        if commands > COMMANDS_MAX {
            return Err(WorkloadError::TooManyCommands { commands });
        }
        if clients == 0 || clients > CLIENTS_MAX || clients as u64 > tickets {
            return Err(WorkloadError::Clients { clients, tickets });
        }
        Ok(Self {
            tickets,
            commands,
            clients,
            in_flight: 1,
        })
    }

    /// The same workload with up to `in_flight` commands in flight per client, on as many
    /// different tickets. Refused when `in_flight` is 0 or `clients * in_flight` exceeds
    /// `min(tickets, CLIENTS_MAX)`.
    pub fn with_in_flight(self, in_flight: usize) -> Result<Self, WorkloadError> {
        let lanes = self.clients.checked_mul(in_flight);
        match lanes {
            Some(lanes)
                if in_flight > 0 && lanes <= CLIENTS_MAX && lanes as u64 <= self.tickets =>
            {
                Ok(Self { in_flight, ..self })
            }
            _ => Err(WorkloadError::InFlight {
                in_flight,
                clients: self.clients,
                tickets: self.tickets,
            }),
        }
    }

    /// Tickets opened, one `OpenTicket` each.
    pub fn tickets(&self) -> u64 {
        self.tickets
    }

    /// Commands in all, opens included.
    pub fn commands(&self) -> u64 {
        self.commands
    }

    /// The `AddComment` commands: `commands - tickets`.
    pub fn comments(&self) -> u64 {
        self.commands - self.tickets
    }

    /// Concurrent clients.
    pub fn clients(&self) -> usize {
        self.clients
    }

    /// Commands each client keeps in flight, on as many different tickets.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Lanes in all: `clients * in_flight`, each running its commands one at a time.
    pub fn lanes(&self) -> usize {
        self.clients * self.in_flight
    }

    /// Command `index` of the workload. Panics when `index >= commands`.
    pub fn step(&self, index: u64) -> Step {
        assert!(index < self.commands, "step {index} of {}", self.commands);
        let ticket = index % self.tickets;
        let kind = if index < self.tickets {
            StepKind::Open
        } else {
            StepKind::Comment {
                comment: index / self.tickets,
            }
        };
        Step {
            index,
            ticket,
            kind,
        }
    }

    /// The commands of each lane, in the order it runs them: lane `l` gets every command
    /// on the tickets `n` with `n % lanes == l`, in workload order. Lane `l` belongs to
    /// client `l % clients`.
    pub fn deal(&self) -> Vec<Vec<Step>> {
        let lanes = self.lanes() as u64;
        let mut plans: Vec<Vec<Step>> = (0..lanes)
            .map(|l| {
                // Tickets l, l + L, ... below `tickets`, each with its share of commands.
                let owned = (self.tickets - l).div_ceil(lanes);
                let share = self.commands.div_ceil(self.tickets) * owned;
                Vec::with_capacity(share.min(self.commands) as usize)
            })
            .collect();
        for index in 0..self.commands {
            let step = self.step(index);
            plans[(step.ticket % lanes) as usize].push(step);
        }
        plans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_matches_writ_bench_engine() {
        let w = Workload::new(3, 8, 1).unwrap();
        let steps: Vec<_> = (0..8).map(|i| w.step(i)).collect();
        let expected = [
            (0, StepKind::Open),
            (1, StepKind::Open),
            (2, StepKind::Open),
            (0, StepKind::Comment { comment: 1 }),
            (1, StepKind::Comment { comment: 1 }),
            (2, StepKind::Comment { comment: 1 }),
            (0, StepKind::Comment { comment: 2 }),
            (1, StepKind::Comment { comment: 2 }),
        ];
        for (i, (step, (ticket, kind))) in steps.iter().zip(expected).enumerate() {
            assert_eq!(step.index, i as u64);
            assert_eq!(step.ticket, ticket);
            assert_eq!(step.kind, kind);
        }
        assert_eq!(w.comments(), 5);
    }

    #[test]
    fn dealing_keeps_every_command_once_and_opens_first() {
        for (tickets, commands, clients, in_flight) in [
            (10, 100, 3, 1),
            (7, 7, 7, 1),
            (5, 23, 1, 1),
            (20, 100, 8, 1),
            (10, 100, 3, 3),
            (20, 100, 2, 8),
            (64, 640, 8, 8),
        ] {
            let w = Workload::new(tickets, commands, clients)
                .unwrap()
                .with_in_flight(in_flight)
                .unwrap();
            let plans = w.deal();
            let lanes = clients * in_flight;
            assert_eq!(plans.len(), lanes);
            let mut seen = vec![false; commands as usize];
            for (l, plan) in plans.iter().enumerate() {
                let mut opened = std::collections::HashSet::new();
                let mut last_index = None;
                for step in plan {
                    // One lane per ticket, so a ticket's commands never overlap; and the
                    // lane's client owns the ticket.
                    assert_eq!((step.ticket % lanes as u64) as usize, l);
                    assert_eq!(step.ticket % clients as u64, (l % clients) as u64);
                    assert!(last_index < Some(step.index), "in workload order");
                    last_index = Some(step.index);
                    assert!(!seen[step.index as usize]);
                    seen[step.index as usize] = true;
                    match step.kind {
                        StepKind::Open => assert!(opened.insert(step.ticket)),
                        StepKind::Comment { .. } => assert!(opened.contains(&step.ticket)),
                    }
                }
            }
            assert!(seen.iter().all(|s| *s));
        }
    }

    #[test]
    fn bad_numbers_are_refused() {
        assert_eq!(Workload::new(0, 10, 1), Err(WorkloadError::NoTickets));
        assert!(matches!(
            Workload::new(10, 9, 1),
            Err(WorkloadError::TooFewCommands { .. })
        ));
        assert!(matches!(
            Workload::new(10, COMMANDS_MAX + 1, 1),
            Err(WorkloadError::TooManyCommands { .. })
        ));
        for clients in [0, 11, CLIENTS_MAX + 1] {
            assert!(matches!(
                Workload::new(10, 10, clients),
                Err(WorkloadError::Clients { .. })
            ));
        }
        let w = Workload::new(1000, 1000, 8).unwrap();
        assert_eq!(w.with_in_flight(64).unwrap().lanes(), 512);
        for in_flight in [0, 65, usize::MAX] {
            let err = w.with_in_flight(in_flight).unwrap_err();
            assert!(matches!(err, WorkloadError::InFlight { .. }), "{err}");
            assert!(err.to_string().contains("--in-flight"), "{err}");
        }
        let few_tickets = Workload::new(10, 10, 2).unwrap();
        assert!(few_tickets.with_in_flight(5).is_ok());
        assert!(few_tickets.with_in_flight(6).is_err());
    }
}
