//! The state of a run and the context kernel paths run in.
//!
//! [`State`] gathers the machine, the kernel's bookkeeping, the oracle and the scheduler's view
//! of the actors. [`Cx`] is what a kernel path or an [`Arch`] method holds: the acting actor and
//! a shared handle on the state. Every primitive a path may use goes through `Cx`, which
//! translates addresses on the actor's current CPU, reports every checked read to the oracle,
//! logs, and offers the preemption points ([`Cx::step`]) between which other actors may run.
//! Nothing here knows any particular race.

use crate::addr::{
    div_size, layout, rem_size, ActorId, AliasKind, CpuId, MmId, Pa, Pfn, Stamp, Va, Vpn,
};
use crate::arch::Arch;
use crate::event::{Event, Side};
use crate::kernel::KernelState;
use crate::machine::{Access, CacheOp, Fault, Machine, Pte, Scope, Translation};
use crate::oracle::{Oracle, ReadKind, Violation, WriteInfo};
use crate::preset::Switches;
use crate::sched::Sched;
use std::cell::{RefCell, RefMut};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Everything a run changes.
#[derive(Debug)]
pub struct State {
    /// The hardware.
    pub m: Machine,
    /// The kernel's bookkeeping.
    pub k: KernelState,
    /// Intended values.
    pub o: Oracle,
    /// Actors and CPUs.
    pub sched: Sched,
    /// The historical behaviours in force.
    pub sw: Switches,
    /// The first violation found, which ends the run.
    pub violation: Option<Violation>,
    /// The names of the arch the run uses and of those it builds on
    /// ([`crate::arch::lineage`]; empty in a state no runner took), which violations carry for
    /// triage.
    pub arch: [&'static str; crate::arch::LINEAGE],
}

crate::reuse::clone_reusing!(State {
    m,
    k,
    o,
    sched,
    sw,
    violation,
    arch
});

/// `cpu`'s translation of kernel address `va`. A kernel path never faults: a missing
/// translation is a model bug.
fn kernel_translation(st: &mut State, cpu: CpuId, va: Va, access: Access) -> Translation {
    st.m.translate(cpu, va, access)
        .unwrap_or_else(|f| panic!("kernel fault {f:?} at {va:#x}"))
}

/// The translation of `base + off` (in `base`'s page) for a kernel access, from the one of
/// `base` kept in `t`; the first call translates `base` and keeps it.
fn translated(
    st: &mut State,
    cpu: CpuId,
    t: &mut Option<Translation>,
    base: Va,
    off: u64,
    access: Access,
) -> Translation {
    let t0 = *t.get_or_insert_with(|| kernel_translation(st, cpu, base, access));
    Translation {
        pa: t0.pa + off,
        ..t0
    }
}

impl State {
    /// Writes the canonical form of this state (see [`crate::canon`]), skipping what equals
    /// `tpl`, the template it started from. The historical switches are the template's and the
    /// violation ends a run, so neither is part of it.
    pub(crate) fn canon(&self, tpl: &State, c: &mut crate::canon::Canon<'_>) {
        self.m.canon(&tpl.m, c);
        self.o.canon(&tpl.o, c);
        self.k.canon(c);
        self.sched.canon(c);
    }

    /// Makes this state a template: copies of it that ran are reset to it (`clone_from`) by
    /// copying back only the oracle's and memory's frames and the cache lines they changed.
    pub fn snapshot(&mut self) {
        self.m.snapshot();
        self.o.snapshot();
    }
}

/// The shared world: state plus the arch implementation.
#[derive(Debug)]
pub struct World<A> {
    /// The state.
    pub st: RefCell<State>,
    /// The flush API implementation.
    pub arch: A,
}

/// The context a kernel path or arch method runs in: who is acting, on which world.
#[derive(Debug)]
pub struct Cx<A> {
    w: Rc<World<A>>,
    me: ActorId,
}

impl<A> Clone for Cx<A> {
    fn clone(&self) -> Self {
        Cx {
            w: self.w.clone(),
            me: self.me,
        }
    }
}

/// A preemption point: completes on the second poll.
#[derive(Debug)]
pub struct StepPoint(bool);

impl Future for StepPoint {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

/// What a kernel store means to the oracle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// Kernel data: coherent everywhere once the path's flushes are done, including for
    /// instruction fetches.
    Kernel,
    /// Data the user asked to be written (`write()`, `copy_to_user`): like a user store, the
    /// I-side may ignore it until the user's cacheflush.
    UserData,
    /// The first contents of a page-cache page read from disk.
    Fill,
}

impl<A: Arch> Cx<A> {
    /// A context for `me` on `w`.
    pub fn new(w: Rc<World<A>>, me: ActorId) -> Cx<A> {
        Cx { w, me }
    }

    /// The arch implementation.
    pub fn arch(&self) -> &A {
        &self.w.arch
    }

    /// Borrows the state. Never hold the borrow across an `.await`.
    pub(crate) fn st(&self) -> RefMut<'_, State> {
        self.w.st.borrow_mut()
    }

    /// The acting actor.
    pub fn me(&self) -> ActorId {
        self.me
    }

    /// The kernel path (or user action) the acting actor is in now, as reports name it: the
    /// innermost one [`Cx::enter`]ed.
    pub fn path(&self) -> &'static str {
        self.st().sched.actor(self.me).path
    }

    /// The registry's name of the path the acting actor's current action started (`idle` for a
    /// hardware event or between actions). A test arch can use it to misbehave in one path
    /// only.
    pub fn action(&self) -> &'static str {
        self.st().sched.actor(self.me).action
    }

    /// The CPU the actor runs on now.
    pub fn cpu(&self) -> CpuId {
        self.cpu_in(&self.st())
    }

    fn cpu_in(&self, st: &State) -> CpuId {
        st.sched
            .cpu_of(self.me)
            .expect("a stepping actor runs on a CPU")
    }

    /// Ends the current step: other actors may run (on other CPUs always; on this one unless
    /// preemption is disabled) before the next one.
    pub fn step(&self) -> StepPoint {
        StepPoint(false)
    }

    /// Ends the step of an actor that waits for another one (a lock, a free pkmap slot). `again`
    /// says that the step ending here began at this same wait and did nothing but check its
    /// condition again: the actor is stalled, and a round of steps in which every actor is
    /// stalled leaves everything as it was, so the drain stops there (see [`crate::run`]).
    pub fn wait(&self, again: bool) -> StepPoint {
        let mut st = self.st();
        let me = st.sched.actor_mut(self.me);
        me.waiting = true;
        if again {
            me.stalled = true;
        }
        StepPoint(false)
    }

    /// The number of the step running now, for a script that keeps it to ask later whether
    /// another actor wrote or read something since (`Oracle::written_by_another_since`). A
    /// script keeps step numbers across its steps only through this: the actor records the
    /// mark for the rest of its action, which lets [`crate::verify`] tell two states apart by
    /// where their recorded steps fall relative to the marks of the actors still running.
    pub fn mark_step(&self) -> u32 {
        let mut st = self.st();
        let step = st.m.log.step;
        st.sched.actor_mut(self.me).marks.push(step);
        step
    }

    /// Disables preemption (and migration) until the matching [`Cx::preempt_enable`].
    pub fn preempt_disable(&self) {
        self.st().sched.actor_mut(self.me).preempt += 1;
    }

    /// Re-enables preemption.
    pub fn preempt_enable(&self) {
        let mut st = self.st();
        let a = st.sched.actor_mut(self.me);
        a.preempt = a
            .preempt
            .checked_sub(1)
            .expect("preempt_enable without preempt_disable");
    }

    /// Takes a spinlock: spins (yielding) while another actor holds it, then holds it with
    /// preemption disabled.
    pub async fn spin_lock(&self, lock: usize) {
        let mut again = false;
        loop {
            {
                let mut st = self.st();
                let holder = st.k.locks[lock];
                if holder.is_none() {
                    st.k.locks[lock] = Some(self.me);
                    let a = st.sched.actor_mut(self.me);
                    a.preempt += 1;
                    a.irqs_off += 1;
                    return;
                }
                assert_ne!(
                    holder,
                    Some(self.me),
                    "spinlock {lock} taken twice by one actor"
                );
            }
            self.wait(again).await;
            again = true;
        }
    }

    /// Releases a spinlock.
    pub fn spin_unlock(&self, lock: usize) {
        let mut st = self.st();
        assert_eq!(st.k.locks[lock], Some(self.me), "unlock of a lock not held");
        st.k.locks[lock] = None;
        let a = st.sched.actor_mut(self.me);
        a.preempt -= 1;
        a.irqs_off -= 1;
    }

    /// Enters a named kernel path (for reports); returns the previous name to restore.
    pub fn enter(&self, name: &'static str, args: impl FnOnce() -> String) -> &'static str {
        let mut st = self.st();
        st.m.log.push(|| Event::Call { name, args: args() });
        std::mem::replace(&mut st.sched.actor_mut(self.me).path, name)
    }

    /// Leaves a kernel path entered with [`Cx::enter`].
    pub fn leave(&self, prev: &'static str) {
        self.st().sched.actor_mut(self.me).path = prev;
    }

    /// Logs a note.
    pub fn note(&self, f: impl FnOnce() -> String) {
        self.st().m.log.push(|| Event::Note(f()));
    }

    /// Whether a violation has ended the run.
    pub fn stopped(&self) -> bool {
        self.st().violation.is_some()
    }

    /// Page size.
    pub fn page_size(&self) -> u64 {
        self.st().m.page_size() as u64
    }

    // ---- checked accesses --------------------------------------------------------------

    /// Records a violation unless one was already found.
    pub fn report(&self, st: &mut State, v: Violation) {
        if st.violation.is_none() {
            st.violation = Some(v);
        }
    }

    fn judge(
        &self,
        st: &mut State,
        va: Va,
        pa: Pa,
        obs: crate::machine::Observed,
        how: ReadKind,
        reader: Option<ActorId>,
    ) {
        if how != ReadKind::Device {
            let step = st.m.log.step;
            st.o.note_read(pa, reader, step);
        }
        if let Err(kind) = st.o.judge(pa, obs.value, how, reader) {
            let context = reader.map_or("device", |r| st.sched.actor(r).path);
            let page = st.m.page_size();
            let alias = if how == ReadKind::Device {
                AliasKind::Unmapped
            } else {
                AliasKind::of(va, page)
            };
            let mut v = violation_at(st, pa, obs.value, obs.from, va, alias, kind, context);
            v.reader = reader;
            v.cpu = reader.and_then(|r| st.sched.cpu_of(r));
            self.report(st, v);
        }
    }

    fn write_info(&self, st: &State, va: Va) -> WriteInfo {
        WriteInfo {
            step: st.m.log.step,
            actor: Some(self.me),
            cpu: st.sched.cpu_of(self.me),
            va,
            alias: Some(AliasKind::of(va, st.m.page_size())),
        }
    }

    /// How a kernel read of `pa` by this actor is judged: as a copy for a private mapping, as
    /// a copy-on-write copy for one address space of a byte another address space's thread
    /// stored last, or as a plain kernel read.
    fn kernel_read_kind(&self, st: &State, pa: Pa) -> ReadKind {
        let me = st.sched.actor(self.me);
        if me.private_copy {
            return ReadKind::KernelForPrivate;
        }
        if let Some(for_mm) = me.copy_for {
            let w = st.o.last_write(pa).0;
            let writer_mm = w.actor.and_then(|a| match st.sched.actor(a).kind {
                crate::sched::ActorKind::Thread { pid } => Some(st.k.procs[pid as usize]),
                _ => None,
            });
            if w.alias == Some(AliasKind::User) && writer_mm.is_some_and(|m| m != for_mm) {
                return ReadKind::KernelForCopyOfOthersStore;
            }
        }
        ReadKind::Kernel
    }

    /// A kernel load through `va`, checked against the intended value. A kernel path never
    /// faults: a missing translation is a model bug.
    pub fn kload(&self, va: Va) -> Stamp {
        let mut st = self.st();
        let cpu = self.cpu_in(&st);
        let t = kernel_translation(&mut st, cpu, va, Access::Read);
        let obs = st.m.load(cpu, va, &t);
        let how = self.kernel_read_kind(&st, t.pa);
        self.judge(&mut st, va, t.pa, obs, how, Some(self.me));
        obs.value
    }

    /// Kernel loads of the `len` consecutive bytes from `va`, all in one page, each checked as
    /// [`Cx::kload`] checks it, up to the first violation: translating once and looking each
    /// cache line up once.
    pub fn kload_run(&self, va: Va, len: u64) {
        if len == 0 {
            return;
        }
        let mut st = self.st();
        let cpu = self.cpu_in(&st);
        debug_assert!(rem_size(va, st.m.page_size()) + len <= st.m.page_size() as u64);
        let t = kernel_translation(&mut st, cpu, va, Access::Read);
        let line = st.m.config().dcache.line;
        let pfn = div_size(t.pa, st.m.page_size()) as Pfn;
        // Without a log to record each load, a line whose bytes all read their intended values
        // is judged at once: every kernel read kind passes an intended value alike.
        let at_once = !st.m.log.enabled() && st.o.kernel_read_of_intended_is_coherent(pfn);
        let mut i = 0;
        while i < len {
            let n = (line as u64 - rem_size(va + i, line)).min(len - i);
            let first = Translation { pa: t.pa + i, ..t };
            let mut obs = st.m.load(cpu, va + i, &first);
            if at_once
                && st.m.run_from(cpu, va + i, &first, obs.from, n as usize)
                    == st.o.intended_bytes(first.pa, n)
            {
                let step = st.m.log.step;
                st.o.note_read(first.pa, Some(self.me), step);
                i += n;
                continue;
            }
            for j in i..i + n {
                let (a, ti) = (va + j, Translation { pa: t.pa + j, ..t });
                if j > i {
                    obs = st.m.load_next(cpu, a, &ti, obs.from);
                }
                let how = self.kernel_read_kind(&st, ti.pa);
                self.judge(&mut st, a, ti.pa, obs, how, Some(self.me));
                if st.violation.is_some() {
                    return;
                }
            }
            i += n;
        }
    }

    /// Kernel loads of the `len` consecutive bytes from `va`, all in one page, whose values the
    /// kernel only takes as a hint that it checks again once the page cannot change (KSM's
    /// checksum and unstable-tree comparisons of a page its user may still be writing, verified
    /// by `pages_identical` after `write_protect_page`): they go through the caches as
    /// [`Cx::kload_run`]'s do, and the contract leaves their values undefined, so none is judged.
    pub fn kload_run_hint(&self, va: Va, len: u64) {
        if len == 0 {
            return;
        }
        let mut st = self.st();
        let cpu = self.cpu_in(&st);
        debug_assert!(rem_size(va, st.m.page_size()) + len <= st.m.page_size() as u64);
        let t = kernel_translation(&mut st, cpu, va, Access::Read);
        let line = st.m.config().dcache.line;
        let mut i = 0;
        while i < len {
            let n = (line as u64 - rem_size(va + i, line)).min(len - i);
            let first = Translation { pa: t.pa + i, ..t };
            let obs = st.m.load(cpu, va + i, &first);
            for j in i + 1..i + n {
                let tj = Translation { pa: t.pa + j, ..t };
                st.m.load_next(cpu, va + j, &tj, obs.from);
            }
            i += n;
        }
    }

    /// Kernel instruction fetches of the `len` consecutive bytes from `va`, all in one page, on
    /// the actor's CPU: kernel text (a module's, a JIT image) executed through its kernel
    /// address, each byte judged as [`ReadKind::KernelFetch`] up to the first violation. The
    /// kernel mapping must allow execution; a kernel path never faults.
    pub fn kfetch_run(&self, va: Va, len: u64) {
        if len == 0 {
            return;
        }
        let mut st = self.st();
        let cpu = self.cpu_in(&st);
        debug_assert!(rem_size(va, st.m.page_size()) + len <= st.m.page_size() as u64);
        let t = kernel_translation(&mut st, cpu, va, Access::Exec);
        for i in 0..len {
            let ti = Translation { pa: t.pa + i, ..t };
            let obs = st.m.fetch(cpu, va + i, &ti);
            self.judge(
                &mut st,
                va + i,
                ti.pa,
                obs,
                ReadKind::KernelFetch,
                Some(self.me),
            );
            if st.violation.is_some() {
                return;
            }
        }
    }

    /// A kernel store of `v` through `va`, a logical write. `multi_step` says the write belongs
    /// to an operation that continues over later steps, so racing readers may see either value.
    pub fn kstore(&self, va: Va, v: Stamp, multi_step: bool) {
        self.kstore_as(va, v, multi_step, StoreKind::Kernel)
    }

    /// A kernel store with an explicit meaning for the oracle (see [`StoreKind`]).
    pub fn kstore_as(&self, va: Va, v: Stamp, multi_step: bool, kind: StoreKind) {
        self.kstore_run(va, &[v], multi_step, kind);
    }

    /// Kernel stores of `values` to the consecutive bytes from `va`, all in one page: what
    /// [`Cx::kstore_as`] of each byte in turn does, translating once and storing a cache line
    /// at a time (a page being written to by its owner's I/O goes byte by byte, as each store
    /// is judged first).
    pub fn kstore_run(&self, va: Va, values: &[Stamp], multi_step: bool, kind: StoreKind) {
        if values.is_empty() {
            return;
        }
        let mut st = self.st();
        let cpu = self.cpu_in(&st);
        let t = kernel_translation(&mut st, cpu, va, Access::Write);
        self.kstore_translated(&mut st, cpu, va, t, values, multi_step, kind);
    }

    /// Copies the `len` bytes from `kfrom` to `kto` (each range in one page) as a kernel
    /// `copy_page` does: what [`Cx::kload`] and then [`Cx::kstore_as`] of each byte in turn do,
    /// each page translated once. A byte last written as user data not yet synchronised for
    /// the I-side ([`crate::oracle::Oracle::user_code`]) stays user data in the copy.
    pub fn kcopy(&self, kto: Va, kfrom: Va, len: u64) {
        let mut st = self.st();
        let cpu = self.cpu_in(&st);
        let mut from: Option<Translation> = None;
        let mut to: Option<Translation> = None;
        let (mut values, mut kinds) = (Vec::new(), Vec::new());
        // Whether the stores go one at a time, oracle and all: within one frame, or to a page
        // under I/O (each store judged first).
        let mut by_byte = None;
        for off in 0..len {
            let (a, b) = (kfrom + off, kto + off);
            let ts = translated(&mut st, cpu, &mut from, kfrom, off, Access::Read);
            let obs = st.m.load(cpu, a, &ts);
            let how = self.kernel_read_kind(&st, ts.pa);
            self.judge(&mut st, a, ts.pa, obs, how, Some(self.me));
            let kind = if st.o.user_code(ts.pa) {
                StoreKind::UserData
            } else {
                StoreKind::Kernel
            };
            let td = translated(&mut st, cpu, &mut to, kto, off, Access::Write);
            let page = st.m.page_size();
            let by_byte = *by_byte.get_or_insert_with(|| {
                div_size(ts.pa, page) == div_size(td.pa, page)
                    || st.o.device_owned(div_size(td.pa, page) as Pfn)
            });
            if by_byte {
                self.kstore_translated(&mut st, cpu, b, td, &[obs.value], false, kind);
                continue;
            }
            // Between pages of their own, the oracle's side of the stores reads nothing the
            // loads change and changes nothing they read: it is noted after the copy, a run
            // of bytes stored alike at a time.
            st.m.store_run(cpu, b, &td, &[obs.value]);
            values.push(obs.value);
            kinds.push(kind);
        }
        let Some(to) = to else { return };
        let mut i = 0;
        while i < values.len() {
            let n = kinds[i..].iter().take_while(|&&k| k == kinds[i]).count();
            let off = i as u64;
            let run = &values[i..i + n];
            self.note_stores(&mut st, kto + off, to.pa + off, run, false, kinds[i], false);
            i += n;
        }
    }

    /// [`Cx::kstore_run`] once `va` is translated to `t`.
    #[allow(clippy::too_many_arguments)]
    fn kstore_translated(
        &self,
        st: &mut State,
        cpu: CpuId,
        va: Va,
        t: Translation,
        values: &[Stamp],
        multi_step: bool,
        kind: StoreKind,
    ) {
        let page = st.m.page_size();
        debug_assert!(rem_size(va, page) + values.len() as u64 <= page as u64);
        let pfn = div_size(t.pa, page) as Pfn;
        let under_io = st.o.device_owned(pfn);
        let line = if under_io {
            1
        } else {
            st.m.config().dcache.line as u64
        };
        let mut i = 0;
        while i < values.len() {
            let a = va + i as u64;
            let n = ((line - rem_size(a, line as u32)) as usize).min(values.len() - i);
            let ti = Translation {
                pa: t.pa + i as u64,
                ..t
            };
            if under_io {
                let obs = crate::machine::Observed {
                    value: values[i],
                    from: crate::event::Source::Memory,
                };
                self.judge(st, a, ti.pa, obs, ReadKind::Kernel, Some(self.me));
            }
            st.m.store_run(cpu, a, &ti, &values[i..i + n]);
            if under_io {
                self.note_stores(st, a, ti.pa, &values[i..i + n], multi_step, kind, true);
            }
            i += n;
        }
        if !under_io {
            // The machine knows nothing of the oracle and the oracle's side reads nothing of
            // the machine's: the whole run's writes can be noted after its stores.
            self.note_stores(st, va, t.pa, values, multi_step, kind, false);
        }
    }

    /// The oracle's side of kernel stores of `values` to the consecutive bytes from `va` (at
    /// `pa`), all in one page, once the machine has done them: each byte in turn, as if stored
    /// alone.
    #[allow(clippy::too_many_arguments)]
    fn note_stores(
        &self,
        st: &mut State,
        va: Va,
        pa: Pa,
        values: &[Stamp],
        multi_step: bool,
        kind: StoreKind,
        under_io: bool,
    ) {
        // What every byte of the run shares: the frame, the writer and its operation.
        let page = st.m.page_size() as u64;
        let pfn = div_size(pa, page as u32);
        let first = pfn * page;
        let base = self.write_info(st, va);
        let (path, op_start) = {
            let me = st.sched.actor(self.me);
            (me.path, me.op_start)
        };
        let flags = crate::oracle::WriteFlags {
            racing: multi_step.then_some(self.me),
            user_data: kind == StoreKind::UserData,
            page_cache: kind != StoreKind::Fill && st.k.is_page_cache(pfn),
        };
        if kind != StoreKind::UserData && !under_io {
            // Nothing but the writes themselves.
            st.o.write_run(pa, values, WriteInfo { va, ..base }, path, flags);
            return;
        }
        let by_another = |w: WriteInfo| w.actor.is_some_and(|a| a != self.me) && w.step >= op_start;
        // Whether another actor wrote the frame since the operation started: the same after
        // each of the run's writes as after the first (the frame's last writer is then this
        // actor, and the one before it stays the one before).
        let mut another_wrote_frame = None;
        // Bytes of the page another actor wrote last since the operation started, counted once
        // when first needed; each write of the run then takes its byte out.
        let mut others: Option<u64> = None;
        for (d, &v) in values.iter().enumerate() {
            let (va, pa) = (va + d as u64, pa + d as u64);
            // The overwritten value and its provenance, if a contest may need them.
            let (prev_info, prev) = if kind == StoreKind::UserData || under_io {
                (st.o.last_write(pa).0, st.o.intended(pa))
            } else {
                (WriteInfo::default(), 0)
            };
            st.o.write(pa, v, WriteInfo { va, ..base }, path, flags);
            let was_others = by_another(prev_info);
            if was_others {
                if let Some(n) = others.as_mut() {
                    *n -= 1;
                }
            }
            let raced = kind == StoreKind::UserData
                && (was_others
                    || (*another_wrote_frame.get_or_insert_with(|| {
                        st.o.written_by_another_since(pfn as Pfn, self.me, op_start)
                    }) && *others.get_or_insert_with(|| {
                        (first..first + page)
                            .filter(|&p| by_another(st.o.last_write(p).0))
                            .count() as u64
                    }) > 0));
            if raced {
                // Another actor wrote these bytes, or others of the page, while this
                // user-requested operation was in flight: the operation may as well have taken
                // effect first. For other bytes of the page this is the false sharing of a cache
                // line between incongruent aliases, which no flush order can make coherent: the
                // write-back of either alias carries the other's old bytes.
                st.o.contest(pa, prev);
            }
            if under_io {
                // A write to a page the device owns through the user's own I/O (a driver buffer
                // was reported as misuse above): the device may read either value.
                st.o.contest(pa, prev);
            }
        }
    }

    /// A fresh value for a logical write.
    pub fn fresh(&self) -> Stamp {
        self.st().o.fresh()
    }

    /// A user-mode access through `va` on the actor's CPU and address space. Returns the fault
    /// if the translation refuses it.
    pub fn user_access(&self, va: Va, access: Access) -> Result<Option<Stamp>, Fault> {
        self.user_access_value(va, access, None)
    }

    /// As [`Cx::user_access`], storing `value` (a copy) instead of a fresh stamp for writes.
    /// Used by `copy_to_user`, which writes user data through the user's own address.
    pub fn user_access_value(
        &self,
        va: Va,
        access: Access,
        value: Option<Stamp>,
    ) -> Result<Option<Stamp>, Fault> {
        let cpu = self.cpu();
        let mut st = self.st();
        let t = st.m.translate(cpu, va, access)?;
        let page = st.m.page_size() as u64;
        let pfn = (t.pa / page) as Pfn;
        let private_file =
            st.k.is_private_file_mapping(st.m.cpus[cpu as usize].mm, va / page, pfn);
        match access {
            Access::Read => {
                let obs = st.m.load(cpu, va, &t);
                self.judge(
                    &mut st,
                    va,
                    t.pa,
                    obs,
                    ReadKind::UserLoad { private_file },
                    Some(self.me),
                );
                Ok(Some(obs.value))
            }
            Access::Exec => {
                let obs = st.m.fetch(cpu, va, &t);
                self.judge(
                    &mut st,
                    va,
                    t.pa,
                    obs,
                    ReadKind::UserFetch { private_file },
                    Some(self.me),
                );
                Ok(Some(obs.value))
            }
            Access::Write => {
                let v = value.unwrap_or_else(|| st.o.fresh());
                st.m.store(cpu, va, &t, v);
                let info = self.write_info(&st, va);
                let pc = st.k.is_page_cache(pfn as u64);
                let path = st.sched.actor(self.me).path;
                st.o.write(
                    t.pa,
                    v,
                    info,
                    path,
                    crate::oracle::WriteFlags {
                        racing: None,
                        user_data: true,
                        page_cache: pc,
                    },
                );
                if t.pte.exec {
                    st.o.user_code_page(pfn);
                }
                Ok(None)
            }
        }
    }

    // ---- maintenance and mappings ------------------------------------------------------

    /// D-cache maintenance of the line holding `va`.
    pub fn dcache_line(&self, op: CacheOp, va: Va, scope: Scope) {
        let cpu = self.cpu();
        self.st().m.dcache_va(cpu, op, va, scope);
    }

    /// D-cache maintenance of every line of `[start, end)`, in one step.
    pub fn dcache_range(&self, op: CacheOp, start: Va, end: Va, scope: Scope) {
        let cpu = self.cpu();
        self.st().m.dcache_va_range(cpu, op, start, end, scope);
    }

    /// D-cache maintenance of one line by set and way, on this CPU only (never broadcast).
    pub fn dcache_setway(&self, op: CacheOp, slot: crate::cache::Slot) {
        let cpu = self.cpu();
        self.st().m.dcache_setway(cpu, op, slot);
    }

    /// The D-cache geometry of this machine.
    pub fn dcache_geometry(&self) -> crate::geometry::CacheGeometry {
        self.st().m.config().dcache
    }

    /// The I-cache geometry of this machine.
    pub fn icache_geometry(&self) -> crate::geometry::CacheGeometry {
        self.st().m.config().icache
    }

    /// The machine's configuration.
    pub fn machine_config(&self) -> crate::machine::MachineConfig {
        self.st().m.config().clone()
    }

    /// The number of D-cache colours (1 when the D-cache does not alias).
    pub fn dcache_colours(&self) -> u64 {
        let st = self.st();
        st.m.config().dcache.colours(st.m.page_size())
    }

    /// The page-table entry of user page `vpn` of `mm` (absent if none).
    pub fn pte(&self, mm: MmId, vpn: Vpn) -> Pte {
        self.st().m.pte(Some(mm), vpn)
    }

    /// The page-table entry of kernel page `vpn` (absent if none).
    pub fn kernel_pte(&self, vpn: Vpn) -> Pte {
        self.st().m.pte(None, vpn)
    }

    /// The VMA of `mm` containing user page `vpn`.
    pub fn vma(&self, mm: MmId, vpn: Vpn) -> Option<crate::kernel::Vma> {
        self.st().k.mms[mm as usize].vma(vpn).copied()
    }

    /// What frame `pfn` holds.
    pub fn page_kind(&self, pfn: Pfn) -> crate::kernel::PageKind {
        self.st().k.pages[pfn as usize].kind
    }

    /// This CPU's translation of `va` as a page-table walk would find it now, without touching
    /// the TLB (`None` if unmapped).
    pub fn probe(&self, va: Va) -> Option<Translation> {
        let cpu = self.cpu();
        self.st().m.probe(cpu, va)
    }

    /// The kernel's bookkeeping (pages, address spaces, files, pkmap), to read. Never hold it
    /// across an `.await`.
    pub fn kernel(&self) -> std::cell::Ref<'_, KernelState> {
        std::cell::Ref::map(self.w.st.borrow(), |st| &st.k)
    }

    /// The kernel's bookkeeping, to change. What the oracle must know of a change (a frame
    /// allocated or freed, a page's first contents) goes through the helpers of
    /// [`crate::kernel`]; never hold it across an `.await`.
    pub fn kernel_mut(&self) -> RefMut<'_, KernelState> {
        RefMut::map(self.st(), |st| &mut st.k)
    }

    /// The hardware, to read (caches, memory, page tables, TLBs). Never hold it across an
    /// `.await`.
    pub fn machine(&self) -> std::cell::Ref<'_, Machine> {
        std::cell::Ref::map(self.w.st.borrow(), |st| &st.m)
    }

    /// The arch-private bits of page `pfn`'s flags (`PG_arch_2` and up, or a field of
    /// `struct page` an arch keeps, such as the CPU that dirtied it), 0 when allocated.
    pub fn page_arch_bits(&self, pfn: Pfn) -> u64 {
        self.st().k.pages[pfn as usize].arch_bits
    }

    /// Sets the arch-private bits of page `pfn`.
    pub fn set_page_arch_bits(&self, pfn: Pfn, bits: u64) {
        self.st().k.pages[pfn as usize].arch_bits = bits;
    }

    /// The arch's context of address space `mm` (`mm->context`: an ASID, a mask of CPUs whose
    /// I-caches are stale), 0 when created.
    pub fn mm_context(&self, mm: MmId) -> u64 {
        self.st().k.mms[mm as usize].context
    }

    /// Sets the arch's context of address space `mm`.
    pub fn set_mm_context(&self, mm: MmId, context: u64) {
        self.st().k.mms[mm as usize].context = context;
    }

    /// One of the arch's [`crate::kernel::ARCH_WORDS`] global words of per-run state, 0 when
    /// the run starts.
    pub fn arch_word(&self, i: usize) -> u64 {
        self.st().k.arch_words[i]
    }

    /// Sets one of the arch's global words.
    pub fn set_arch_word(&self, i: usize, v: u64) {
        self.st().k.arch_words[i] = v;
    }

    /// Whole D-cache maintenance.
    pub fn dcache_all(&self, op: CacheOp, scope: Scope) {
        let cpu = self.cpu();
        self.st().m.dcache_all(cpu, op, scope);
    }

    /// I-cache invalidation of every line of `[start, end)`.
    pub fn icache_range(&self, start: Va, end: Va, scope: Scope) {
        let cpu = self.cpu();
        let mut st = self.st();
        let line = st.m.config().icache.line as u64;
        let mut a = start & !(line - 1);
        while a < end {
            st.m.icache_va(cpu, a, scope);
            a += line;
        }
    }

    /// Whole I-cache invalidation.
    pub fn icache_all(&self, scope: Scope) {
        let cpu = self.cpu();
        self.st().m.icache_all(cpu, scope);
    }

    /// Invalidates TLB entries of user pages `[start, end)` of `mm` (all pages if `None`).
    pub fn tlb_user(&self, mm: MmId, range: Option<(Vpn, Vpn)>, scope: Scope) {
        let cpu = self.cpu();
        self.st().m.tlb_invalidate(
            cpu,
            scope,
            || {
                format!(
                    "mm {mm} {}",
                    range.map_or("all".into(), |(a, b)| format!("pages {a}..{b}"))
                )
            },
            |asid, vpn| asid == Some(mm) && range.is_none_or(|(a, b)| vpn >= a && vpn < b),
        );
    }

    /// Invalidates TLB entries of kernel pages `[start, end)`.
    pub fn tlb_kernel(&self, start: Vpn, end: Vpn, scope: Scope) {
        let cpu = self.cpu();
        self.st().m.tlb_invalidate(
            cpu,
            scope,
            || format!("kernel pages {start}..{end}"),
            |asid, vpn| asid.is_none() && vpn >= start && vpn < end,
        );
    }

    /// Writes a page-table entry (user pages of `mm`, or kernel pages).
    pub fn write_pte(&self, mm: Option<MmId>, vpn: Vpn, pte: Pte) {
        self.st().m.set_pte(mm, vpn, pte);
    }

    /// Maps `pfn` in a colour window of this CPU (`which` 0 or 1) at the colour of `like_va`, and
    /// returns the window's address. The caller must have disabled preemption.
    pub fn map_colour_window(&self, which: u64, like_va: Va, pfn: Pfn) -> Va {
        let cpu = self.cpu();
        let mut st = self.st();
        let page = st.m.page_size() as u64;
        let colours =
            st.m.config()
                .dcache
                .colours(page as u32)
                .max(st.m.config().icache.colours(page as u32));
        let colour = (like_va / page) % colours;
        let vpn =
            layout::COLOUR_WIN + (cpu as u64 * 2 + which) * layout::COLOUR_WIN_STRIDE + colour;
        st.m.set_pte(None, vpn, Pte::new(pfn, true, false));
        drop(st);
        self.tlb_kernel(vpn, vpn + 1, Scope::Local);
        vpn * page
    }

    /// Unmaps a colour window mapped by [`Cx::map_colour_window`].
    pub fn unmap_colour_window(&self, va: Va) {
        let vpn = va / self.page_size();
        self.write_pte(None, vpn, Pte::default());
        self.tlb_kernel(vpn, vpn + 1, Scope::Local);
    }

    /// The kernel address through which `pfn` is reachable now without a new mapping: the
    /// linear map for lowmem, the pkmap slot for a kmapped highmem page (`page_address`).
    pub fn page_address(&self, pfn: Pfn) -> Option<Va> {
        let st = self.st();
        st.m.linear_va(pfn).or_else(|| {
            st.k.pkmap
                .slot_of(pfn)
                .map(|s| (layout::PKMAP + s as u64) * st.m.page_size() as u64)
        })
    }

    /// The linear-map address of lowmem frame `pfn`.
    pub fn linear_va(&self, pfn: Pfn) -> Option<Va> {
        self.st().m.linear_va(pfn)
    }

    /// The user mappings of `pfn` in `mm` (or in every mm if `None`), as `(mm, vpn, shared)`.
    pub fn user_mappings(&self, pfn: Pfn, mm: Option<MmId>) -> Vec<(MmId, Vpn, bool)> {
        let st = self.st();
        st.k.pages[pfn as usize]
            .rmap
            .iter()
            .filter(|(m, _)| mm.is_none_or(|x| x == *m))
            .map(|&(m, v)| (m, v, st.k.is_shared_mapping(m, v)))
            .collect()
    }

    /// Whether `pfn` is an anonymous page.
    pub fn page_is_anon(&self, pfn: Pfn) -> bool {
        matches!(
            self.st().k.pages[pfn as usize].kind,
            crate::kernel::PageKind::Anon
        )
    }

    /// Whether `pfn` is a page-cache page.
    pub fn page_is_file(&self, pfn: Pfn) -> bool {
        matches!(
            self.st().k.pages[pfn as usize].kind,
            crate::kernel::PageKind::PageCache { .. }
        )
    }

    /// The `PG_arch_1` flag of the page's folio (kept in its first page, as `folio->flags`).
    pub fn pg_arch_1(&self, pfn: Pfn) -> bool {
        let st = self.st();
        let head = st.k.folio(pfn).0;
        st.k.pages[head as usize].arch_1
    }

    /// Sets or clears the `PG_arch_1` flag of the page's folio.
    pub fn set_pg_arch_1(&self, pfn: Pfn, v: bool) {
        let mut st = self.st();
        let head = st.k.folio(pfn).0;
        st.k.pages[head as usize].arch_1 = v;
    }

    /// The folio of frame `pfn` (`page_folio`): its first frame and its number of pages
    /// (`pfn` and 1 for a page of its own).
    pub fn folio(&self, pfn: Pfn) -> (Pfn, u64) {
        self.st().k.folio(pfn)
    }

    /// Whether frame `pfn` is highmem.
    pub fn is_highmem(&self, pfn: Pfn) -> bool {
        self.st().m.config().is_highmem(pfn)
    }

    /// The address space this CPU's MMU walks now.
    pub fn current_mm(&self) -> Option<MmId> {
        let cpu = self.cpu();
        self.st().m.cpus[cpu as usize].mm
    }

    /// The CPUs that have run `mm` (`mm_cpumask`), as a bit mask.
    pub fn mm_cpumask(&self, mm: MmId) -> u8 {
        self.st().k.mms[mm as usize].cpumask
    }

    /// Number of CPUs.
    pub fn ncpus(&self) -> u8 {
        self.st().m.config().cpus
    }

    /// Runs `f` on each CPU in turn as an inter-processor interrupt would, with the same actor
    /// temporarily placed there. The handler must not yield.
    pub fn on_each_cpu(&self, f: impl Fn(&Self)) {
        let home = self.cpu();
        for c in 0..self.ncpus() {
            self.st().sched.borrow_cpu(self.me, c);
            f(self);
        }
        self.st().sched.borrow_cpu(self.me, home);
    }

    /// Whether the D-cache can hold two lines for one physical byte.
    pub fn dcache_aliases(&self) -> bool {
        let st = self.st();
        st.m.config().dcache.aliases(st.m.page_size())
    }

    /// Whether an I-cache fill sees the data a store left in the D-cache, so that code written
    /// through the kernel needs no D-cache write-back before it is fetched (MIPS
    /// `cpu_has_ic_fills_f_dc`; a snooping I-cache does at least as much).
    pub fn icache_fills_from_dcache(&self) -> bool {
        self.st().m.config().icache_coherence != crate::machine::IcacheCoherence::None
    }

    /// Whether the D-cache is virtually tagged (VIVT).
    pub fn dcache_vivt(&self) -> bool {
        self.st().m.config().dcache.virtually_tagged()
    }

    /// Whether hardware broadcasts cache maintenance by VA.
    pub fn cache_ops_broadcast(&self) -> bool {
        let st = self.st();
        st.m.config().cpus == 1 || st.m.config().broadcast >= crate::machine::Broadcast::Cache
    }

    /// The scope an arch uses when maintenance must reach every CPU: hardware broadcast if the
    /// machine has it, inter-processor interrupts otherwise.
    pub fn all_cpus(&self) -> Scope {
        Scope::AllCpus
    }

    /// Whether two addresses have the same D-cache colour.
    pub fn congruent(&self, a: Va, b: Va) -> bool {
        let st = self.st();
        let g = st.m.config().dcache;
        let p = st.m.page_size();
        g.colour(a, p) == g.colour(b, p)
    }

    /// The historical behaviours in force.
    pub fn switches(&self) -> Switches {
        self.st().sw
    }

    /// Pages of the pkmap area, as `[start, end)` page numbers.
    pub fn pkmap_range(&self) -> (Vpn, Vpn) {
        let st = self.st();
        (
            layout::PKMAP,
            layout::PKMAP + st.m.config().pkmap_slots as u64,
        )
    }

    /// Whether a speculative or real access could fill through `va` on any CPU (used by arches
    /// that must reason about speculation).
    pub fn speculate(&self, cpu: CpuId, va: Va, side: Side) -> bool {
        self.st().m.speculate(cpu, va, side)
    }
}

/// Whether the newest value of `pa` is still somewhere: memory or a valid line.
pub fn survives(st: &State, pa: Pa) -> bool {
    let want = st.o.intended(pa);
    if st.m.memory(pa) == want {
        return true;
    }
    let dl = st.m.config().dcache.line as u64;
    let lpa = pa & !(dl - 1);
    st.m.cpus.iter().any(|c| {
        c.d.slots_holding(lpa)
            .any(|s| c.d.read(s, (pa - lpa) as u32) == want)
    })
}

/// Every place the newest value of `pa` is: memory and the valid D-lines holding it.
pub fn where_is(st: &State, pa: Pa) -> Vec<crate::event::Source> {
    let want = st.o.intended(pa);
    let mut v = Vec::new();
    if st.m.memory(pa) == want {
        v.push(crate::event::Source::Memory);
    }
    let dl = st.m.config().dcache.line as u64;
    let lpa = pa & !(dl - 1);
    for (c, cpu) in st.m.cpus.iter().enumerate() {
        for s in cpu.d.slots_holding(lpa) {
            if cpu.d.read(s, (pa - lpa) as u32) == want {
                let m = cpu.d.meta(s);
                v.push(crate::event::Source::Cache {
                    cpu: c as CpuId,
                    side: Side::D,
                    slot: s,
                    dirty: m.dirty,
                    line_va: m.va,
                });
            }
        }
    }
    v
}

/// The violation of reading `observed` at `pa` (through `va`, an `alias`) in `context`, with the
/// provenance the oracle and the machine hold now. Reader and CPU are left for the caller.
#[allow(clippy::too_many_arguments)]
pub fn violation_at(
    st: &State,
    pa: Pa,
    observed: Stamp,
    from: crate::event::Source,
    va: Va,
    alias: AliasKind,
    kind: crate::oracle::Kind,
    context: &'static str,
) -> Violation {
    let (write, write_context) = st.o.last_write(pa);
    let (previous, _, previous_context) = st.o.previous_write(pa);
    Violation {
        kind,
        pa,
        va,
        alias,
        expected: st.o.intended(pa),
        observed,
        from,
        reader: None,
        cpu: None,
        step: st.m.log.step,
        context,
        write,
        write_context,
        observed_context: if observed == previous {
            previous_context
        } else {
            ""
        },
        newest_survives: survives(st, pa),
        newest_at: where_is(st, pa),
        object: st.k.shared_object(pa / st.m.page_size() as u64),
        arch: st.arch,
        history: Vec::new(),
    }
}
