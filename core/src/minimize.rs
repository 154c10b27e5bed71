//! The minimizer: reduces an input on its decoded operations while the violation signature and
//! its race family ([`crate::triage::family`]) stay the same. Passes: delete chunks of ops
//! (halving the chunk size down to single ops), delete whole actions (a `start` with the steps
//! of its actor up to that actor's next `start`), then simplify each op (a `start` that only
//! stepped a busy actor becomes a `step`, an action on a user page becomes a load or store of
//! that page and one on a driver buffer a kmap read or write of it, which take fewer steps,
//! CPUs and picks go to 0, action fields toward 0 or `false`, actors toward lower numbers),
//! repeated until nothing changes.
//!
//! When they stop, searches that each try a fixed list of shorter inputs, in this order, and
//! go back to the first passes after a success:
//! - splits: an action becomes a shorter one on the same target, its actor starts the original
//!   action (or it in another mode, such as another DMA direction) afresh at one of its next
//!   steps, and steps after that restart go; a long action whose first steps and a late phase
//!   both matter gives way to two short ones this way;
//! - pairs (inputs of at most [`PAIR_LIMIT`] ops): delete an op or an action while changing one
//!   other op to a neighbour (another CPU or actor, a field one off, small or a value another
//!   op uses for it, the other direction, a load for a store);
//!
//! and on inputs of at most [`SEARCH_LIMIT`] ops:
//! - retargets: delete an op or an action while renaming a target in every op that names it
//!   (targets are numbered among what exists when an op runs, so deleting an `munmap` can move
//!   every later op to another page), or putting every op of a field on one target;
//! - replacements: an action and its steps give way to one `start` of another action (a
//!   shorter one on its target, or one the input uses, as it is or with a field changed), at
//!   the action's `start` or at one of its steps, for an action that matters for one thing it
//!   does late or only keeps a place;
//! - pairs with steps: pairs whose changed `start` is followed by up to [`PAIR_STEPS`] steps of
//!   its actor, for an action that needs more steps than the one it replaces (a fetch fault
//!   doing the work of a deleted `read()` and a load fault);
//! - lateral changes: an op moved, changed to a neighbour, or a target renamed in every op that
//!   names it, followed by the deletion passes, kept if they then shorten the input (an action
//!   that only delayed another goes once the op it delayed moves).
//!
//! The result is never longer than the input, and the same input always gives the same result.
//!
//! [`shorten_in_family`] then runs the same passes keeping only the race family (the mechanism,
//! [`crate::triage::family`]) rather than the exact signature, for a shorter demonstration of
//! the same race through another reader; `hunt` and `bench` report its result.

use crate::model::DynModel;
use crate::op::{Action, Op};
use crate::oracle::Violation;
use crate::paths::{Catalog, FieldKind};
use crate::run::RunOptions;

/// The most runs one minimization makes.
pub const MAX_RUNS: usize = 20_000;

/// The longest input the pair pass runs on.
pub const PAIR_LIMIT: usize = 24;

/// The longest input the replacements, the pairs with steps and the lateral changes run on.
pub const SEARCH_LIMIT: usize = 16;
/// The values below which the lateral changes try putting every op of a field on one target.
pub const UNIFY_VALUES: u8 = 32;

/// The most steps the pair pass adds after a changed `start`.
pub const PAIR_STEPS: usize = 2;

/// How many of an action's first steps the split pass tries to restart the action at (after a
/// shorter action on the same target has taken its place).
pub const SPLIT_STEPS: usize = 8;

/// The outcome of a minimization.
#[derive(Clone, Debug)]
pub struct Minimized {
    /// The reduced ops.
    pub ops: Vec<Op>,
    /// The signature kept.
    pub signature: String,
    /// Runs made.
    pub runs: usize,
}

struct Oracle<'a> {
    signature: &'a mut dyn FnMut(&[Op]) -> Option<String>,
    target: String,
    runs: usize,
    catalog: &'a Catalog,
}

impl Oracle<'_> {
    fn keeps(&mut self, ops: &[Op]) -> bool {
        if self.runs >= MAX_RUNS {
            return false;
        }
        self.runs += 1;
        (self.signature)(ops).as_deref() == Some(self.target.as_str())
    }

    /// The first of `cands` that keeps the signature; `None` once the run budget is spent.
    fn first_kept(&mut self, cands: impl IntoIterator<Item = Vec<Op>>) -> Option<Vec<Op>> {
        for c in cands {
            if self.runs >= MAX_RUNS {
                return None;
            }
            if self.keeps(&c) {
                return Some(c);
            }
        }
        None
    }
}

/// The signature `ops` produce on `model`, if any.
pub fn signature_of(model: &dyn DynModel, ops: &[Op]) -> Option<String> {
    model
        .run(ops, RunOptions::default())
        .violation
        .map(|v| v.signature())
}

/// A speculation or eviction like `like` (which is one) with these fields.
fn hardware_op(like: &Op, cpu: u8, icache: bool, pick: u16) -> Op {
    if matches!(like, Op::Speculate { .. }) {
        Op::Speculate { cpu, icache, pick }
    } else {
        Op::Evict { cpu, icache, pick }
    }
}

/// Candidate simplifications of one op, simplest first.
fn simpler(c: &Catalog, op: &Op) -> Vec<Op> {
    let mut v = Vec::new();
    match *op {
        Op::Step { actor, cpu } => {
            if cpu != 0 {
                v.push(Op::Step { actor, cpu: 0 });
            }
            for a in 0..actor {
                v.push(Op::Step { actor: a, cpu });
            }
        }
        Op::Start { actor, cpu, action } => {
            v.push(Op::Step { actor, cpu });
            if cpu != 0 {
                v.push(Op::Start {
                    actor,
                    cpu: 0,
                    action,
                });
            }
            for a in 0..actor {
                v.push(Op::Start {
                    actor: a,
                    cpu,
                    action,
                });
            }
            for a in shorter_actions(c, &action) {
                v.push(Op::Start {
                    actor,
                    cpu,
                    action: a,
                });
            }
            let fields = c.fields(&action);
            for i in 0..fields.len() {
                let cur = fields[i].1.clone();
                let mut cands: Vec<String> = Vec::new();
                if let Ok(n) = cur.parse::<u8>() {
                    cands.extend(
                        [0u8, n / 2, n.saturating_sub(1)]
                            .into_iter()
                            .filter(|c| *c < n)
                            .map(|c| c.to_string()),
                    );
                } else {
                    // A flag goes to false, a choice to each earlier name.
                    cands.extend(simpler_modes(c.path_of(&action).fields[i].kind, &cur));
                }
                for x in cands {
                    let mut f = fields.clone();
                    f[i].1 = x;
                    if let Some(a) = c.action_from_fields(c.name(&action), &f) {
                        v.push(Op::Start {
                            actor,
                            cpu,
                            action: a,
                        });
                    }
                }
            }
        }
        Op::Speculate { cpu, icache, pick } | Op::Evict { cpu, icache, pick } => {
            let make = |cpu, pick| hardware_op(op, cpu, icache, pick);
            if cpu != 0 {
                v.push(make(0, pick));
            }
            for p in [0, pick / 2, pick.saturating_sub(1)] {
                if p < pick {
                    v.push(make(cpu, p));
                }
            }
        }
    }
    v.dedup();
    v
}

/// The user accesses of `action`'s user page (load, store, fetch) and the kmap accesses of its
/// driver buffer (kmap-write, kmap-read), whichever fields it has.
fn same_target(c: &Catalog, action: &Action) -> Vec<Action> {
    let fields = c.fields(action);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == name)
            .and_then(|(_, x)| x.parse::<u8>().ok())
    };
    let at = |path: &str, target: &'static str, n: u8| {
        c.action_from_fields(path, &[(target, n.to_string()), ("off", "0".into())])
    };
    let mut v = Vec::new();
    if let Some(page) = field("page") {
        v.extend(
            ["load", "store", "fetch"]
                .iter()
                .filter_map(|p| at(p, "page", page)),
        );
    }
    if let Some(buf) = field("buf") {
        v.extend(
            ["kmap-write", "kmap-read"]
                .iter()
                .filter_map(|p| at(p, "buf", buf)),
        );
    }
    v
}

/// Actions that touch what `action` touches in fewer steps: a user load or store of its user
/// page, a kmap write or read of its driver buffer.
fn shorter_actions(c: &Catalog, action: &Action) -> Vec<Action> {
    // Load before store, kmap-write before kmap-read: only ever towards the front, so that
    // simplification cannot cycle.
    const ORDER: [&str; 4] = ["load", "store", "kmap-write", "kmap-read"];
    let rank = |a: &Action| ORDER.iter().position(|n| *n == c.name(a));
    let mut v = same_target(c, action);
    v.retain(|a| rank(a).is_some());
    if let Some(r) = rank(action) {
        v.retain(|a| rank(a).is_some_and(|q| q < r));
    }
    v
}

/// The other values of a field that is not a number: a flag's opposite, a choice's other names
/// (such as the other DMA directions), in order.
fn other_modes(kind: FieldKind, cur: &str) -> Vec<String> {
    match kind {
        FieldKind::Num => Vec::new(),
        FieldKind::Flag => vec![if cur == "true" { "false" } else { "true" }.into()],
        FieldKind::Choice(names) => names
            .iter()
            .filter(|d| **d != cur)
            .map(|d| d.to_string())
            .collect(),
    }
}

/// The simpler values of a field that is not a number: `false` for a flag that is `true`, the
/// names before a choice's, in order.
fn simpler_modes(kind: FieldKind, cur: &str) -> Vec<String> {
    match kind {
        FieldKind::Num => Vec::new(),
        FieldKind::Flag => (cur == "true")
            .then(|| "false".to_string())
            .into_iter()
            .collect(),
        FieldKind::Choice(names) => names
            .iter()
            .take_while(|d| **d != cur)
            .map(|d| d.to_string())
            .collect(),
    }
}

/// `action` with one field that is not a number (a direction, a flag) changed to each of its
/// other values in turn: the same target, another mode.
fn mode_variants(c: &Catalog, action: &Action) -> Vec<Action> {
    let fields = c.fields(action);
    let mut v = Vec::new();
    for i in 0..fields.len() {
        if fields[i].1.parse::<u8>().is_ok() {
            continue;
        }
        for x in other_modes(c.path_of(action).fields[i].kind, &fields[i].1) {
            let mut f = fields.clone();
            f[i].1 = x;
            if let Some(a) = c.action_from_fields(c.name(action), &f) {
                v.push(a);
            }
        }
    }
    v
}

/// The numeric field values the `start`s of `ops` use, by field name, in order and without
/// repeats: a field that names a user page or a buffer does so relative to what exists when it
/// runs (the n-th mapped page), so after a deletion the value another op uses for the same
/// target may be the one that still reaches it.
fn field_pool(c: &Catalog, ops: &[Op]) -> Vec<(&'static str, u8)> {
    let mut pool = Vec::new();
    for op in ops {
        if let Op::Start { action, .. } = op {
            for (k, x) in c.fields(action) {
                if let Ok(n) = x.parse::<u8>() {
                    if !pool.contains(&(k, n)) {
                        pool.push((k, n));
                    }
                }
            }
        }
    }
    pool
}

/// Values near `n`: the small ones and one off, without `n`.
fn near(n: u8) -> Vec<u8> {
    let mut v: Vec<u8> = vec![0, 1, 2, 3, n.wrapping_sub(1), n.wrapping_add(1)];
    v.retain(|&x| x != n);
    v.sort_unstable();
    v.dedup();
    v
}

/// `action` with one numeric field set to each of its near values and to each value the
/// `pool` has for a field of that name.
fn field_variants(c: &Catalog, action: &Action, pool: &[(&'static str, u8)]) -> Vec<Action> {
    let fields = c.fields(action);
    let mut v = Vec::new();
    for i in 0..fields.len() {
        let Ok(n) = fields[i].1.parse::<u8>() else {
            continue;
        };
        let mut cands = near(n);
        for &(k, x) in pool {
            if k == fields[i].0 && x != n && !cands.contains(&x) {
                cands.push(x);
            }
        }
        for x in cands {
            let mut f = fields.clone();
            f[i].1 = x.to_string();
            if let Some(a) = c.action_from_fields(c.name(action), &f) {
                v.push(a);
            }
        }
    }
    v
}

/// Neighbours of one op for the pair pass: every other small CPU and actor, each field set to a
/// small value, one off or a value another op of the input uses for a field of that name
/// (`pool`, [`field_pool`]), the other DMA directions, booleans flipped, the other user access
/// to the same page and the other kmap access to the same buffer.
fn neighbours(c: &Catalog, op: &Op, pool: &[(&'static str, u8)]) -> Vec<Op> {
    let mut v = Vec::new();
    match *op {
        Op::Step { actor, cpu } => {
            v.extend(near(cpu).into_iter().map(|c| Op::Step { actor, cpu: c }));
            v.extend(near(actor).into_iter().map(|a| Op::Step { actor: a, cpu }));
        }
        Op::Start { actor, cpu, action } => {
            let start = |actor, cpu, action| Op::Start { actor, cpu, action };
            v.extend(near(cpu).into_iter().map(|c| start(actor, c, action)));
            v.extend(near(actor).into_iter().map(|a| start(a, cpu, action)));
            let mut others = same_target(c, &action);
            others.retain(|a| c.name(a) != c.name(&action));
            others.extend(field_variants(c, &action, pool));
            others.extend(mode_variants(c, &action));
            v.extend(others.into_iter().map(|a| start(actor, cpu, a)));
        }
        Op::Speculate { cpu, icache, pick } | Op::Evict { cpu, icache, pick } => {
            let make = |cpu, pick| hardware_op(op, cpu, icache, pick);
            v.extend(near(cpu).into_iter().map(|c| make(c, pick)));
            let picks = [0, 1, 2, 3, pick.wrapping_sub(1), pick.wrapping_add(1)];
            v.extend(
                picks
                    .into_iter()
                    .filter(|&p| p != pick)
                    .map(|p| make(cpu, p)),
            );
        }
    }
    v.dedup();
    v
}

/// One pair step: the first input (in a fixed order) that deletes an op or an action of `cur`
/// and changes one remaining op to a neighbour, and keeps the signature. With `extra` above 0,
/// a neighbour that starts an action is followed by `extra` steps of its actor on its CPU: an
/// action put in place of another may need more steps to reach the point the race needs (a
/// fetch fault in place of a load fault of a page that a deleted `read()` had filled must also
/// fill it). Only inputs shorter than `cur` are tried.
fn pair_step(cur: &[Op], o: &mut Oracle<'_>, extra: usize) -> Option<Vec<Op>> {
    let c = o.catalog;
    let pool = field_pool(c, cur);
    let deletions = one_deletions(cur)
        .into_iter()
        .filter(|d| d.len() + extra < cur.len());
    o.first_kept(deletions.flat_map(|d| changed_ops(c, &d, &pool, extra)))
}

/// `d` with one op changed to a neighbour ([`neighbours`]), in order; with `extra` above 0,
/// only changes to a `start`, each followed by `extra` steps of its actor on its CPU.
fn changed_ops(c: &Catalog, d: &[Op], pool: &[(&'static str, u8)], extra: usize) -> Vec<Vec<Op>> {
    let mut v = Vec::new();
    for k in 0..d.len() {
        for n in neighbours(c, &d[k], pool) {
            let steps = match n {
                Op::Start { actor, cpu, .. } => vec![Op::Step { actor, cpu }; extra],
                _ if extra > 0 => continue,
                _ => Vec::new(),
            };
            let mut cand = d.to_vec();
            cand[k] = n;
            cand.splice(k + 1..k + 1, steps);
            v.push(cand);
        }
    }
    v
}

/// `cur` without one op, and without one action where that is more than one op, in order.
fn one_deletions(cur: &[Op]) -> Vec<Vec<Op>> {
    let mut v: Vec<Vec<Op>> = Vec::new();
    for i in 0..cur.len() {
        let mut d = cur.to_vec();
        d.remove(i);
        v.push(d);
        if let Some(d) = without_action(cur, i) {
            if d.len() + 1 < cur.len() {
                v.push(d);
            }
        }
    }
    v.retain(|d| !d.is_empty());
    v
}

/// One retarget step: the first input (in a fixed order) that deletes an op or an action of
/// `cur` and renames a target in every op that names it ([`retargets`]), and keeps the
/// signature. Targets are numbered among what exists when an op runs (the n-th mapped page),
/// so deleting an op that changed what exists (an `munmap`) can change what every later op
/// reaches.
fn retarget_step(cur: &[Op], o: &mut Oracle<'_>) -> Option<Vec<Op>> {
    let c = o.catalog;
    let pool = field_pool(c, cur);
    o.first_kept(one_deletions(cur).into_iter().flat_map(|d| {
        let mut v = retargets(c, &d, &pool);
        v.retain(|c| *c != d);
        v
    }))
}

/// The indices of the steps of the action started at `i` (a `start`): the steps of the same
/// actor up to its next `start`.
fn own_steps(ops: &[Op], i: usize) -> Vec<usize> {
    let Op::Start { actor, .. } = ops[i] else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for (j, op) in ops.iter().enumerate().skip(i + 1) {
        match *op {
            Op::Step { actor: a, .. } if a == actor => v.push(j),
            Op::Start { actor: a, .. } if a == actor => break,
            _ => {}
        }
    }
    v
}

/// `ops` without the ops at the (sorted) indices `drop`.
fn without(ops: &[Op], drop: &[usize]) -> Vec<Op> {
    ops.iter()
        .enumerate()
        .filter(|(j, _)| drop.binary_search(j).is_err())
        .map(|(_, op)| *op)
        .collect()
}

/// `ops` without the action started at `i` (a `start`): the `start` and the steps of the same
/// actor up to its next `start`.
fn without_action(ops: &[Op], i: usize) -> Option<Vec<Op>> {
    if !matches!(ops[i], Op::Start { .. }) {
        return None;
    }
    let mut drop = vec![i];
    drop.extend(own_steps(ops, i));
    Some(without(ops, &drop))
}

/// One split step: the first input (in a fixed order) shorter than `cur` that splits an action
/// in two and keeps the signature. A long action may matter for two things it does: what its
/// first steps do to its target, which a shorter action on the same target also does, and a
/// later phase reached only after many steps, which the same action (or the same action in
/// another mode, such as another DMA direction) may reach at once when started afresh. So the
/// `start` becomes a shorter action on the same target ([`shorter_actions`]); one of the
/// actor's next [`SPLIT_STEPS`] steps becomes a `start` of the original action or of one of its
/// [`mode_variants`] (it starts something only if the shorter action is over by then: a `start`
/// on a busy actor steps it); and of the steps after that restart only the first `k` stay, `k`
/// from 0 up, never all of them. The shorter action alone, with or without the steps, lacks
/// the late phase, and the restart alone lacks the first part, so neither the single changes
/// nor the pairs of the other passes find these.
fn split_step(cur: &[Op], o: &mut Oracle<'_>) -> Option<Vec<Op>> {
    let c = o.catalog;
    o.first_kept((0..cur.len()).flat_map(|i| splits(c, cur, i)))
}

/// The splits of the action started at `i` ([`split_step`]), in order; none if `i` is not a
/// `start`.
fn splits(c: &Catalog, cur: &[Op], i: usize) -> Vec<Vec<Op>> {
    let Op::Start { actor, cpu, action } = cur[i] else {
        return Vec::new();
    };
    let own = own_steps(cur, i);
    let mut restarts = vec![action];
    restarts.extend(mode_variants(c, &action));
    let mut v = Vec::new();
    for short in shorter_actions(c, &action) {
        for p in 0..own.len().min(SPLIT_STEPS) {
            let Op::Step { cpu: at, .. } = cur[own[p]] else {
                unreachable!("own steps are steps");
            };
            let after = &own[p + 1..];
            for k in 0..after.len() {
                for &again in &restarts {
                    let mut cand = cur.to_vec();
                    cand[i] = Op::Start {
                        actor,
                        cpu,
                        action: short,
                    };
                    cand[own[p]] = Op::Start {
                        actor,
                        cpu: at,
                        action: again,
                    };
                    v.push(without(&cand, &after[k..]));
                }
            }
        }
    }
    v
}

/// The actions a replacement may start in place of `action`: the shorter ones on its target
/// and the other accesses of it ([`shorter_actions`], [`same_target`]), and every action the
/// `start`s of `cur` use, each as it is and with one field changed ([`field_variants`],
/// [`mode_variants`]); in that order, without repeats and without `action` itself.
fn replacements(c: &Catalog, action: &Action, cur: &[Op]) -> Vec<Action> {
    let pool = field_pool(c, cur);
    let mut v = shorter_actions(c, action);
    v.extend(same_target(c, action));
    for op in cur {
        if let Op::Start { action: a, .. } = op {
            v.push(*a);
            v.extend(field_variants(c, a, &pool));
            v.extend(mode_variants(c, a));
        }
    }
    let mut seen = Vec::new();
    v.retain(|a| {
        let new = a != action && !seen.contains(a);
        seen.push(*a);
        new
    });
    v
}

/// One replace step: the first input (in a fixed order) shorter than `cur` that replaces an
/// action and its steps by one `start` of another action ([`replacements`]) and keeps the
/// signature. An action may matter for one thing it does late (a kmap in a `get_user_pages`
/// path, three steps in) that another action does at once, or only keep a place another
/// action could keep with fewer steps; so the new `start` goes at the action's own `start`
/// or at one of its next [`SPLIT_STEPS`] steps (on that step's CPU), and the action's other
/// steps go.
fn replace_step(cur: &[Op], o: &mut Oracle<'_>) -> Option<Vec<Op>> {
    let c = o.catalog;
    o.first_kept((0..cur.len()).flat_map(|i| replaced(c, cur, i)))
}

/// The replacements of the action started at `i` and its steps ([`replace_step`]), in order;
/// none if `i` is not a `start` or its action has no steps.
fn replaced(c: &Catalog, cur: &[Op], i: usize) -> Vec<Vec<Op>> {
    let Op::Start { actor, cpu, action } = cur[i] else {
        return Vec::new();
    };
    let own = own_steps(cur, i);
    if own.is_empty() {
        return Vec::new();
    }
    let alternatives = replacements(c, &action, cur);
    let mut v = Vec::new();
    for at in std::iter::once(i).chain(own.iter().copied().take(SPLIT_STEPS)) {
        let on = if let Op::Step { cpu: c, .. } = cur[at] {
            c
        } else {
            cpu
        };
        let mut drop: Vec<usize> = std::iter::once(i).chain(own.iter().copied()).collect();
        drop.retain(|&j| j != at);
        for &x in &alternatives {
            let mut cand = cur.to_vec();
            cand[at] = Op::Start {
                actor,
                cpu: on,
                action: x,
            };
            v.push(without(&cand, &drop));
        }
    }
    v
}

/// Minimizes `ops` on `model`, keeping the signature they produce. `None` if they produce no
/// violation.
pub fn minimize(model: &dyn DynModel, ops: &[Op]) -> Option<Minimized> {
    minimize_if(model, ops, &mut |_| true)
}

/// [`minimize`], keeping only inputs for which `also` holds too (for example "and the
/// unpatched arch stays clean" or "and the `-fixed` twin stays clean"), besides the signature.
/// `None` if `ops` produce no violation or `also` does not hold for them.
pub fn minimize_if(
    model: &dyn DynModel,
    ops: &[Op],
    also: &mut dyn FnMut(&[Op]) -> bool,
) -> Option<Minimized> {
    let applied = model.run(ops, RunOptions::default()).ops_applied;
    // The signature and the race family both: one signature may show two mechanisms (a stale
    // read of a line filled before a write-back, or of a line a dirty alias hides), and a
    // reduction must not trade the input's for the other.
    let mut sig = |o: &[Op]| {
        if !also(o) {
            return None;
        }
        model
            .run(o, RunOptions::default())
            .violation
            .map(|v| format!("{}{KEY_SEP}{}", v.signature(), crate::triage::family(&v)))
    };
    let mut m = minimize_by(&mut sig, model.catalog(), ops, applied)?;
    if let Some((signature, _family)) = m.signature.split_once(KEY_SEP) {
        m.signature = signature.to_string();
    }
    Some(m)
}

/// Separates the signature from the family in what the first stage of the minimizer keeps.
const KEY_SEP: char = '\u{0}';

/// Reduces an already minimized race further, keeping only its race family
/// ([`crate::triage::family`], the mechanism) instead of its exact signature: the same
/// mechanism may show in fewer ops through another reader, such as the end-of-run audit for a
/// stale line that an explicit load could only read after a transfer's last step. Returns the
/// shorter of `m` and the reduced input (`m` when they are equally long), with the signature
/// it has.
pub fn shorten_in_family(model: &dyn DynModel, m: Minimized) -> Minimized {
    shorten_in_family_if(model, m, &mut |_| true)
}

/// [`shorten_in_family`], keeping only inputs for which `also` holds too.
pub fn shorten_in_family_if(
    model: &dyn DynModel,
    m: Minimized,
    also: &mut dyn FnMut(&[Op]) -> bool,
) -> Minimized {
    within_family(
        &mut |o: &[Op]| {
            if !also(o) {
                return None;
            }
            model.run(o, RunOptions::default()).violation
        },
        model.catalog(),
        m,
    )
}

fn within_family(
    violation: &mut dyn FnMut(&[Op]) -> Option<Violation>,
    catalog: &Catalog,
    m: Minimized,
) -> Minimized {
    let mut family = |o: &[Op]| violation(o).map(|v| crate::triage::family(&v));
    let Some(f) = minimize_by(&mut family, catalog, &m.ops, m.ops.len()) else {
        return m;
    };
    let runs = m.runs + f.runs;
    if f.ops.len() >= m.ops.len() {
        return Minimized { runs, ..m };
    }
    let signature = violation(&f.ops)
        .expect("the family stage keeps a violation")
        .signature();
    Minimized {
        ops: f.ops,
        signature,
        runs: runs + 1,
    }
}

/// The deletion passes: chunks of ops, largest first down to single ops, then whole actions.
fn deletions(mut cur: Vec<Op>, o: &mut Oracle<'_>) -> Vec<Op> {
    let mut chunk = (cur.len() / 2).max(1);
    loop {
        let mut i = 0;
        while i < cur.len() {
            let end = (i + chunk).min(cur.len());
            let mut cand = cur.clone();
            cand.drain(i..end);
            if !cand.is_empty() && o.keeps(&cand) {
                cur = cand;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 {
            break;
        }
        chunk /= 2;
    }
    let mut i = 0;
    while i < cur.len() {
        match without_action(&cur, i) {
            Some(cand) if !cand.is_empty() && o.keeps(&cand) => cur = cand,
            _ => i += 1,
        }
    }
    cur
}

/// `cur` with every `start` field named `name` that holds `from` (any value if `None`) set to
/// `to`: the same target named another way in every op that names it, or every op on one
/// target.
fn retarget(c: &Catalog, cur: &[Op], name: &str, from: Option<u8>, to: u8) -> Vec<Op> {
    cur.iter()
        .map(|op| match *op {
            Op::Start { actor, cpu, action } => {
                let mut f = c.fields(&action);
                let mut changed = false;
                for (k, x) in f.iter_mut() {
                    let holds = x
                        .parse::<u8>()
                        .ok()
                        .filter(|n| from.is_none_or(|f| f == *n));
                    if *k == name && holds.is_some() {
                        *x = to.to_string();
                        changed = true;
                    }
                }
                let action = changed
                    .then(|| c.action_from_fields(c.name(&action), &f))
                    .flatten()
                    .unwrap_or(action);
                Op::Start { actor, cpu, action }
            }
            other => other,
        })
        .collect()
}

/// `cur` with a target renamed in every op that names it (to a small value, one off, or a
/// value of `pool` for that field), then with every op of a field put on one target (any
/// value below [`UNIFY_VALUES`] or one of `pool`); see [`retarget`].
fn retargets(c: &Catalog, cur: &[Op], pool: &[(&'static str, u8)]) -> Vec<Vec<Op>> {
    let mut v = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for &(name, from) in field_pool(c, cur).iter() {
        let mut tos = near(from);
        tos.extend(
            pool.iter()
                .filter(|(k, x)| *k == name && *x != from)
                .map(|(_, x)| *x),
        );
        for to in tos {
            v.push(retarget(c, cur, name, Some(from), to));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    for name in names {
        let mut tos: Vec<u8> = (0..UNIFY_VALUES).collect();
        tos.extend(pool.iter().filter(|(k, _)| *k == name).map(|(_, x)| *x));
        for to in tos {
            v.push(retarget(c, cur, name, None, to));
        }
    }
    v
}

/// One lateral step: the first input (in a fixed order) that changes `cur` without shortening
/// it, keeps the signature, and then loses ops to the deletion passes. The changes: an op
/// moved to another place, an op changed to a neighbour ([`neighbours`]), a target renamed in
/// every op that names it (to a small value, one off, or a value the input uses for that
/// field), and every op of a field put on one target ([`retarget`], to any value below
/// [`UNIFY_VALUES`] or one the input uses). This finds the shorter inputs that need a change and more than
/// one deletion, such as an action that only delayed another, which can go once the op it
/// delayed is moved.
fn lateral_step(cur: &[Op], o: &mut Oracle<'_>) -> Option<Vec<Op>> {
    let c = o.catalog;
    let pool = field_pool(c, cur);
    let mut cands: Vec<Vec<Op>> = Vec::new();
    for k in 0..cur.len() {
        for j in 0..cur.len() {
            if j != k {
                let mut cand = cur.to_vec();
                let op = cand.remove(k);
                cand.insert(j, op);
                cands.push(cand);
            }
        }
    }
    for k in 0..cur.len() {
        for n in neighbours(c, &cur[k], &pool) {
            let mut cand = cur.to_vec();
            cand[k] = n;
            cands.push(cand);
        }
    }
    cands.extend(retargets(c, cur, pool.as_slice()));
    let mut tried: Vec<Vec<Op>> = Vec::new();
    for cand in cands {
        if cand == cur || tried.contains(&cand) {
            continue;
        }
        if o.runs >= MAX_RUNS {
            return None;
        }
        tried.push(cand.clone());
        if o.keeps(&cand) {
            let d = deletions(cand, o);
            if d.len() < cur.len() {
                return Some(d);
            }
        }
    }
    None
}

/// The reduction itself, over any function from ops to a signature. `applied` is how many ops
/// the original run applied before its violation ended it.
fn minimize_by(
    signature: &mut dyn FnMut(&[Op]) -> Option<String>,
    catalog: &Catalog,
    ops: &[Op],
    applied: usize,
) -> Option<Minimized> {
    let target = signature(ops)?;
    let mut o = Oracle {
        signature,
        target,
        runs: 1,
        catalog,
    };
    let mut cur = ops.to_vec();
    // A violation ends the run: ops after it never ran.
    cur.truncate(applied.max(1));
    loop {
        let before = cur.clone();
        cur = deletions(cur, &mut o);
        // Simplify each op.
        for i in 0..cur.len() {
            for s in simpler(catalog, &cur[i]) {
                let mut cand = cur.clone();
                cand[i] = s;
                if o.keeps(&cand) {
                    cur = cand;
                    break;
                }
            }
        }
        if o.runs >= MAX_RUNS {
            break;
        }
        if cur == before {
            if let Some(shorter) = split_step(&cur, &mut o) {
                cur = shorter;
                continue;
            }
            let small = cur.len() <= SEARCH_LIMIT;
            let shorter = (cur.len() <= PAIR_LIMIT)
                .then(|| pair_step(&cur, &mut o, 0))
                .flatten()
                .or_else(|| small.then(|| retarget_step(&cur, &mut o)).flatten())
                .or_else(|| small.then(|| replace_step(&cur, &mut o)).flatten())
                .or_else(|| {
                    (1..=PAIR_STEPS)
                        .take_while(|_| small)
                        .find_map(|extra| pair_step(&cur, &mut o, extra))
                })
                .or_else(|| small.then(|| lateral_step(&cur, &mut o)).flatten());
            match shorter {
                Some(shorter) => cur = shorter,
                None => break,
            }
        }
    }
    Some(Minimized {
        ops: cur,
        signature: o.target,
        runs: o.runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Trace;

    fn ops_of(text: &str) -> (std::rc::Rc<dyn DynModel>, Vec<Op>) {
        let t = Trace::parse(text).expect("test trace parses");
        let p = crate::preset::by_name(&t.preset).expect("preset");
        (crate::model::shipped_cached(&p), t.ops)
    }

    #[test]
    fn long_actions_give_way_to_short_ones() {
        // A campaign finding: a direct I/O only faults the page in, with all its steps.
        let mut text = String::from(
            "flushfuzz-trace 1\npreset gup-anon-alias\nexpect none\n\
             start T0 cpu0 direct-io page=3 to-device=false\n",
        );
        text.push_str(&"step T0 cpu0\n".repeat(19));
        text.push_str("start T0 cpu0 store page=3 off=0\n");
        text.push_str("start T0 cpu0 direct-io page=3 to-device=false\n");
        let (p, ops) = ops_of(&text);
        let m = minimize(&*p, &ops).expect("it reproduces");
        assert_eq!(
            m.signature,
            "lost-write:end-of-run audit@user<-device@device"
        );
        assert_eq!(m.ops.len(), 5, "{:?}", m.ops);
    }

    #[test]
    fn a_long_action_splits_into_a_short_one_and_a_restart() {
        // A campaign finding: the DMA transfer's own kmap of its buffer leaves it a pkmap
        // address, which two other kmaps recycle and reuse while the transfer's unmap, ten
        // steps in, invalidates through it. A kmap write of the buffer does the first part; the
        // transfer started afresh from the device invalidates at once. The kmap write alone
        // does not race, and the transfer needs all its steps to reach its unmap.
        let mut text = String::from(
            "flushfuzz-trace 1\npreset kmap-recycle-dma\nexpect none\n\
             start T0 cpu0 dma buf=11 dir=bidirectional\n",
        );
        text.push_str(&"step T0 cpu0\n".repeat(10));
        text.push_str("start T1 cpu0 kmap-write buf=2 off=0\n");
        text.push_str("start K0 cpu0 kmap-write buf=89 off=16\n");
        let (p, ops) = ops_of(&text);
        let m = minimize(&*p, &ops).expect("it reproduces");
        assert_eq!(
            m.signature,
            "lost-write:end-of-run audit@unmapped<-kmap-write@pkmap"
        );
        assert_eq!(m.ops.len(), 6, "{:?}", m.ops);
        let c = p.catalog();
        assert!(
            m.ops.iter().any(|op| matches!(
                op,
                Op::Start { action, .. }
                    if c.name(action) == "kmap-write" && c.fields(action)[0].1 == "11"
            )),
            "{:?}",
            m.ops
        );
    }

    #[test]
    fn the_family_stage_finds_the_shorter_reader_of_the_same_race() {
        // A campaign finding: a store leaves the user line dirty, a direct I/O from the device
        // rewrites the page behind it, and a load after the transfer's last step reads the
        // stale line. That load must wait for every step; the end-of-run audit sees the same
        // line, which would bury the device's data, without them.
        let mut text = String::from(
            "flushfuzz-trace 1\npreset gup-anon-alias\nexpect none\n\
             start T0 cpu0 store page=3 off=0\n",
        );
        text.push_str(&"step T0 cpu0\n".repeat(3));
        text.push_str("start T0 cpu0 direct-io page=3 to-device=false\n");
        text.push_str(&"step T0 cpu0\n".repeat(10));
        text.push_str("start T1 cpu0 load page=3 off=0\n");
        let (p, ops) = ops_of(&text);
        let m = minimize(&*p, &ops).expect("it reproduces");
        assert_eq!(m.signature, "stale-load:user load@user<-device@device");
        // The load that reads the stale line waits for the transfer's steps.
        assert_eq!(m.ops.len(), 15, "{:?}", m.ops);
        let family = |ops: &[Op]| {
            p.run(ops, RunOptions::default())
                .violation
                .map(|v| crate::triage::family(&v))
        };
        let s = shorten_in_family(&*p, m.clone());
        assert_eq!(
            s.signature,
            "lost-write:end-of-run audit@user<-device@device"
        );
        assert!(s.ops.len() <= 5, "{:?}", s.ops);
        assert_eq!(family(&s.ops), family(&m.ops));
        assert_eq!(
            signature_of(&*p, &s.ops).as_deref(),
            Some(s.signature.as_str())
        );
        // A race already as short as its family allows stays as it is.
        let again = shorten_in_family(&*p, s.clone());
        assert_eq!(again.ops, s.ops);
        assert_eq!(again.signature, s.signature);
    }

    /// Minimizes the trace `text` (its preset line and ops) and checks that the signature is
    /// `signature`, `len` ops are left, and no `start` of the action `gone` is.
    fn reaches(text: &str, signature: &str, len: usize, gone: &str) {
        let (p, ops) = ops_of(&format!("flushfuzz-trace 1\n{text}"));
        let m = minimize(&*p, &ops).expect("it reproduces");
        assert_eq!(m.signature, signature);
        assert_eq!(m.ops.len(), len, "{:?}", m.ops);
        assert!(
            !m.ops.iter().any(
                |op| matches!(op, Op::Start { action, .. } if p.catalog().name(action) == gone)
            ),
            "{:?}",
            m.ops
        );
    }

    #[test]
    fn a_changed_action_may_bring_the_steps_it_needs() {
        // A campaign finding: a read() fills a page-cache page through the linear map and
        // copies it out in four more steps; a load fault maps the page executable; the reader,
        // free again, fetches it on the other CPU. A fault that fills the page itself takes one
        // step more than the load fault did, so the read can go only with that step added.
        reaches(
            "preset exec-icache-smp\nexpect none\n\
             start T0 cpu0 read file=0 index=2 off=0 page=0\nstep T0 cpu0\nstep T0 cpu0\n\
             step T0 cpu0\nstep T0 cpu0\nstart T1 cpu0 load page=6 off=0\n\
             start T0 cpu1 fetch page=6 off=0\n",
            "stale-fetch:user fetch@user<-readpage@linear",
            3,
            "read",
        );
    }

    #[test]
    fn an_action_gives_way_to_one_started_where_it_mattered() {
        // A random finding: a get_user_pages path (for write: a read one would get the zero
        // page, a lowmem page no kmap slot is needed for) matters only for its kmap, three steps in,
        // after the DMA mapping of the buffer whose pkmap slot that kmap recycles. A kmap write
        // started at that step does the same at once.
        reaches(
            "preset kmap-recycle-dma\nexpect none\n\
             start K1 cpu0 kmap-write buf=2 off=0\nstep K1 cpu0\n\
             start T0 cpu0 gup page=0 off=0 write=true\nstep K1 cpu0\nstep T0 cpu0\n\
             step T0 cpu0\nstart K0 cpu0 dma-sync buf=2 dir=from-device\nstep T0 cpu0\n\
             start T1 cpu0 kmap-write buf=1 off=8\n",
            "lost-write:end-of-run audit@unmapped<-kmap-write@pkmap",
            6,
            "gup",
        );
    }

    #[test]
    fn a_delaying_action_goes_once_what_it_delayed_moves() {
        // A random finding: a fork holds the address space while a direct I/O waits, so that
        // a kmap write gets its pkmap slot before the direct I/O's readpage does. Moving the
        // kmap write first keeps that order without the fork.
        reaches(
            "preset kmap-recycle-dma\nexpect none\n\
             start T1 cpu0 fork\nstart T0 cpu0 direct-io page=104 to-device=false\n\
             step T1 cpu0\nstart K0 cpu0 kmap-write buf=90 off=0\nstep T1 cpu0\n\
             step T1 cpu0\nstep T1 cpu0\nstep T0 cpu0\nstep T0 cpu0\nstep T0 cpu0\n\
             step T0 cpu0\nstart T1 cpu0 kmap-write buf=77 off=16\n",
            "lost-write:end-of-run audit@unmapped<-kmap-write@pkmap",
            6,
            "fork",
        );
    }

    #[test]
    fn ops_on_one_target_move_to_another_together() {
        // A random finding: a store and a direct I/O reach the same page of a fresh mapping
        // through two page numbers. Without the mapping, both must name another page, at once.
        reaches(
            "preset gup-anon-alias\nexpect none\n\
             start T0 cpu0 mmap file=0 pgoff=0 at=13 shared=false exec=false fixed=false\n\
             start T1 cpu0 store page=142 off=0\nstep T1 cpu0\nstep T1 cpu0\nstep T1 cpu0\n\
             step T1 cpu0\nstart T0 cpu0 direct-io page=46 to-device=true\n",
            "stale-device-read:device@unmapped<-user store@user",
            5,
            "mmap",
        );
    }

    #[test]
    fn a_deleted_munmap_takes_the_page_numbers_with_it() {
        // A random finding: an munmap of the first pages makes page 0 the text page that a load
        // fault maps executable and a fetch on the other CPU reads. Without the munmap, both
        // must name the text page by another number.
        reaches(
            "preset exec-icache-smp\nexpect none\n\
             start T0 cpu0 munmap page=0 pages=91\nstart T0 cpu0 load page=0 off=0\n\
             step T0 cpu0\nstart T1 cpu0 fetch page=0 off=0\n",
            "stale-fetch:user fetch@user<-readpage@linear",
            3,
            "munmap",
        );
    }

    #[test]
    fn pairs_reach_what_single_changes_cannot() {
        // A store that only moved frame allocation, so that the readdir needed page 0.
        let (p, ops) = ops_of(
            "flushfuzz-trace 1\npreset nfs-vmap-alias\nexpect none\n\
             start T0 cpu0 store page=0 off=0\nstart T1 cpu0 readdir at=0 pages=0\n",
        );
        let m = minimize(&*p, &ops).expect("it reproduces");
        assert_eq!(m.signature, "stale-load:decode@vmap<-readdir@linear");
        assert_eq!(m.ops.len(), 1, "{:?}", m.ops);
    }
}
