//! How much a storing node keeps for others (PROTOCOL.md §3, threat model: "flooding the store").
//!
//! Anyone can make valid records: a fresh key pair signs a record under the key its own hash
//! names. Validation therefore cannot stop a peer from filling a node's store with junk; a
//! budget does. Every node that stores for others keeps
//! * a **total** byte budget, so memory stays bounded, and
//! * a **per-source** quota (source = the peer that sent the write), so one peer can only ever
//!   take its share and never lock others out.
//!
//! A full store refuses *new* bytes; it never evicts what it already holds, so junk cannot
//! displace records stored earlier. A newer version of a stored record that does not grow it is
//! always admitted (an owner updating its bucket in a full store). Pure: the caller measures the
//! store and passes the numbers in.
//!
//! Every record is charged its value, its key and [`RECORD_OVERHEAD`]: tiny records are not
//! free, so the record *count* limit of the store can never be reached before the byte budget
//! (which would lock out every new key, the node's own included).

/// What one record costs beyond its value and key (bookkeeping, and a floor for tiny records).
pub const RECORD_OVERHEAD: usize = 1024;

/// The bytes a record is charged.
pub fn charge(key_len: usize, value_len: usize) -> usize {
    key_len + value_len + RECORD_OVERHEAD
}

/// The limits, from [`crate::config::Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub total_bytes: usize,
    pub per_source_bytes: usize,
}

/// What the store holds now, as seen for one incoming write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of every record value in the store.
    pub total: usize,
    /// Bytes of the record values this write's source put there.
    pub of_source: usize,
    /// The copy this write would replace, if the key is already stored.
    pub replaced: Option<Replaced>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replaced {
    pub len: usize,
    /// Whether the same source put the copy being replaced (its bytes are then its own).
    pub same_source: bool,
}

/// Why a valid record was not stored. Logged with the key and the source.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BudgetError {
    #[error("store full: {used} of {budget} bytes in use")]
    StoreFull { used: usize, budget: usize },
    #[error("source over its quota: {used} of {quota} bytes in use")]
    SourceQuota { used: usize, quota: usize },
}

/// Whether a write of `len` bytes fits.
pub fn admit(budget: &Budget, usage: &Usage, len: usize) -> Result<(), BudgetError> {
    let (freed, freed_of_source) = match usage.replaced {
        Some(r) => (r.len, if r.same_source { r.len } else { 0 }),
        None => (0, 0),
    };
    let total_after = usage.total.saturating_sub(freed) + len;
    if len > freed && total_after > budget.total_bytes {
        return Err(BudgetError::StoreFull {
            used: usage.total,
            budget: budget.total_bytes,
        });
    }
    let source_after = usage.of_source.saturating_sub(freed_of_source) + len;
    if len > freed_of_source && source_after > budget.per_source_bytes {
        return Err(BudgetError::SourceQuota {
            used: usage.of_source,
            quota: budget.per_source_bytes,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const B: Budget = Budget {
        total_bytes: 1000,
        per_source_bytes: 300,
    };

    fn usage(total: usize, of_source: usize) -> Usage {
        Usage {
            total,
            of_source,
            replaced: None,
        }
    }

    #[test]
    fn table() {
        // (usage, len, expected)
        let cases: &[(Usage, usize, Result<(), BudgetError>)] = &[
            (usage(0, 0), 300, Ok(())),
            (
                usage(0, 0),
                301,
                Err(BudgetError::SourceQuota {
                    used: 0,
                    quota: 300,
                }),
            ),
            (
                usage(900, 0),
                101,
                Err(BudgetError::StoreFull {
                    used: 900,
                    budget: 1000,
                }),
            ),
            (usage(900, 0), 100, Ok(())),
            (
                usage(500, 250),
                51,
                Err(BudgetError::SourceQuota {
                    used: 250,
                    quota: 300,
                }),
            ),
            // An owner's newer version the same size as the copy it replaces, in a full store.
            (
                Usage {
                    total: 1000,
                    of_source: 0,
                    replaced: Some(Replaced {
                        len: 200,
                        same_source: false,
                    }),
                },
                200,
                Ok(()),
            ),
            // Growing a record in a full store is refused.
            (
                Usage {
                    total: 1000,
                    of_source: 0,
                    replaced: Some(Replaced {
                        len: 200,
                        same_source: false,
                    }),
                },
                201,
                Err(BudgetError::StoreFull {
                    used: 1000,
                    budget: 1000,
                }),
            ),
            // A source at its quota may replace its own record with one as large.
            (
                Usage {
                    total: 300,
                    of_source: 300,
                    replaced: Some(Replaced {
                        len: 100,
                        same_source: true,
                    }),
                },
                100,
                Ok(()),
            ),
        ];
        for (u, len, want) in cases {
            assert_eq!(admit(&B, u, *len), *want, "{u:?} + {len}");
        }
    }

    /// Tiny records are not free: a source can place at most quota / overhead records, and the
    /// store's record count limit is above what the whole budget can hold.
    #[test]
    fn tiny_records_cannot_exhaust_the_record_count() {
        for limits in [
            crate::config::Limits::default(),
            crate::config::Limits::server(),
        ] {
            let b = limits.budget();
            let mut u = usage(0, 0);
            let mut n = 0usize;
            while admit(&b, &u, charge(60, 1)).is_ok() {
                u.total += charge(60, 1);
                u.of_source += charge(60, 1);
                n += 1;
            }
            assert!(n <= b.per_source_bytes / RECORD_OVERHEAD, "{n}");
            assert!(limits.max_stored_records > b.total_bytes / RECORD_OVERHEAD);
        }
    }

    proptest! {
        /// Whatever a sequence of writes from several sources does, admitted bytes never exceed
        /// the budget, and no source ever holds more than its quota.
        #[test]
        fn admitted_writes_stay_within_budget_and_quota(
            writes in proptest::collection::vec((0usize..4, 0usize..400), 0..200)
        ) {
            let mut by_source = [0usize; 4];
            for (source, len) in writes {
                let u = usage(by_source.iter().sum(), by_source[source]);
                if admit(&B, &u, len).is_ok() {
                    by_source[source] += len;
                }
                prop_assert!(by_source.iter().sum::<usize>() <= B.total_bytes);
                prop_assert!(by_source.iter().all(|&b| b <= B.per_source_bytes));
            }
        }
    }
}
