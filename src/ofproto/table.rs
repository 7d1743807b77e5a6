//! One OpenFlow table as a tuple-space classifier, and the bridge's set of 255 tables.
//!
//! Rules are grouped into subtables by mask; a lookup visits subtables in order of their
//! highest priority and stops as soon as no remaining subtable can beat the best match.
//! Every subtable visited adds its whole mask to the caller's wildcard mask: that is the
//! set of bits the lookup's outcome depended on (a rule that did *not* match only failed
//! on bits inside its own mask), which is what keeps megaflows correct. Skipped subtables
//! cannot matter: none of their rules could outrank the match, whatever the packet.

use std::collections::HashMap;
use std::sync::Arc;

use super::rule::{FlowSelector, Rule, N_TABLES};
use crate::packet::{FlowKey, FlowMask};

/// Rules sharing one mask, hashed by their masked key.
#[derive(Debug)]
struct Subtable {
    mask: FlowMask,
    words: u64,
    max_priority: u16,
    /// Masked-key hash -> rules, best first (priority desc, then oldest first).
    buckets: HashMap<u32, Vec<Arc<Rule>>>,
    n_rules: usize,
}

impl Subtable {
    fn hash(&self, key: &FlowKey) -> u32 {
        crate::packet::flow_key::hash_masked(key, &self.mask, self.words)
    }
}

/// Orders two rules: better one first (higher priority; among equals, the older).
fn beats(a: &Rule, b: &Rule) -> bool {
    (a.opts.priority, std::cmp::Reverse(a.id)) > (b.opts.priority, std::cmp::Reverse(b.id))
}

/// One flow table.
#[derive(Debug, Default)]
pub struct FlowTable {
    subtables: Vec<Subtable>,
    rules: HashMap<u64, Arc<Rule>>,
}

impl FlowTable {
    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the table has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Finds the highest-priority rule matching `flow`, adding every bit the answer
    /// depended on to `wc`.
    pub fn lookup(&self, flow: &FlowKey, wc: &mut FlowMask) -> Option<&Arc<Rule>> {
        let mut best: Option<&Arc<Rule>> = None;
        for st in &self.subtables {
            if let Some(b) = best {
                if st.max_priority < b.opts.priority {
                    break;
                }
            }
            wc.union_with(&st.mask);
            let masked = flow.masked(&st.mask);
            if let Some(bucket) = st.buckets.get(&st.hash(&masked)) {
                if let Some(r) = bucket.iter().find(|r| r.matcher.key == masked) {
                    if best.map_or(true, |b| beats(r, b)) {
                        best = Some(r);
                    }
                }
            }
        }
        best
    }

    /// The rule with exactly this match and priority, if any (OpenFlow "identical").
    pub fn find_exact(&self, m: &super::rule::Match, priority: u16) -> Option<&Arc<Rule>> {
        let st = self.subtables.iter().find(|s| s.mask == m.mask)?;
        st.buckets
            .get(&st.hash(&m.key))?
            .iter()
            .find(|r| r.matcher == *m && r.opts.priority == priority)
    }

    /// Inserts a rule, replacing (and returning) an identical one.
    pub fn insert(&mut self, rule: Arc<Rule>) -> Option<Arc<Rule>> {
        let old = self
            .find_exact(&rule.matcher, rule.opts.priority)
            .map(|r| r.id);
        let replaced = old.and_then(|id| self.remove(id));
        let idx = match self
            .subtables
            .iter()
            .position(|s| s.mask == rule.matcher.mask)
        {
            Some(i) => i,
            None => {
                self.subtables.push(Subtable {
                    mask: rule.matcher.mask,
                    words: rule.matcher.mask.nonzero_words(),
                    max_priority: 0,
                    buckets: HashMap::new(),
                    n_rules: 0,
                });
                self.subtables.len() - 1
            }
        };
        let st = &mut self.subtables[idx];
        let h = st.hash(&rule.matcher.key);
        let bucket = st.buckets.entry(h).or_default();
        let pos = bucket
            .iter()
            .position(|r| beats(&rule, r))
            .unwrap_or(bucket.len());
        bucket.insert(pos, rule.clone());
        st.n_rules += 1;
        st.max_priority = st.max_priority.max(rule.opts.priority);
        self.rules.insert(rule.id, rule);
        self.sort_subtables();
        replaced
    }

    /// Removes a rule by id.
    pub fn remove(&mut self, id: u64) -> Option<Arc<Rule>> {
        let rule = self.rules.remove(&id)?;
        if let Some(i) = self
            .subtables
            .iter()
            .position(|s| s.mask == rule.matcher.mask)
        {
            let st = &mut self.subtables[i];
            let h = st.hash(&rule.matcher.key);
            if let Some(bucket) = st.buckets.get_mut(&h) {
                bucket.retain(|r| r.id != id);
                if bucket.is_empty() {
                    st.buckets.remove(&h);
                }
            }
            st.n_rules -= 1;
            if st.n_rules == 0 {
                self.subtables.remove(i);
            } else {
                st.max_priority = st
                    .buckets
                    .values()
                    .flat_map(|b| b.first())
                    .map(|r| r.opts.priority)
                    .max()
                    .unwrap_or(0);
                self.sort_subtables();
            }
        }
        Some(rule)
    }

    fn sort_subtables(&mut self) {
        self.subtables
            .sort_by_key(|s| std::cmp::Reverse(s.max_priority));
    }

    /// All rules, unordered.
    pub fn rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.rules.values()
    }
}

/// The bridge's tables, 0..=254.
#[derive(Debug)]
pub struct Tables {
    tables: Vec<FlowTable>,
    next_id: u64,
}

impl Default for Tables {
    fn default() -> Self {
        Tables {
            tables: (0..N_TABLES).map(|_| FlowTable::default()).collect(),
            next_id: 1,
        }
    }
}

impl Tables {
    /// Table `id` (ids above 254 fold onto nothing: callers validate first).
    pub fn table(&self, id: u8) -> Option<&FlowTable> {
        self.tables.get(id as usize)
    }

    /// Mutable table access.
    pub fn table_mut(&mut self, id: u8) -> Option<&mut FlowTable> {
        self.tables.get_mut(id as usize)
    }

    /// A fresh rule id.
    pub fn next_rule_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Every rule, ordered by table, priority (highest first) and age (oldest first).
    pub fn all_rules(&self) -> Vec<Arc<Rule>> {
        let mut v: Vec<Arc<Rule>> = self
            .tables
            .iter()
            .flat_map(|t| t.rules().cloned())
            .collect();
        v.sort_by(|a, b| {
            (a.opts.table, std::cmp::Reverse(a.opts.priority), a.id).cmp(&(
                b.opts.table,
                std::cmp::Reverse(b.opts.priority),
                b.id,
            ))
        });
        v
    }

    /// Rules a modify/delete request selects.
    pub fn select(&self, sel: &FlowSelector, strict: bool) -> Vec<Arc<Rule>> {
        self.all_rules()
            .into_iter()
            .filter(|r| r.selected_by(sel, strict))
            .collect()
    }

    /// Removes a rule given its table and id.
    pub fn remove(&mut self, table: u8, id: u64) -> Option<Arc<Rule>> {
        self.table_mut(table)?.remove(id)
    }

    /// Total number of rules.
    pub fn n_rules(&self) -> usize {
        self.tables.iter().map(|t| t.len()).sum()
    }
}
