//! What each kernel path declares it calls (`PathInfo::calls`, printed by `flushfuzz paths`) is
//! what it calls: every shipped arch wrapped in `Recording` runs the seeds and random inputs on
//! its presets, and each recorded (path, arch method) pair must be declared, and each declared
//! call must be an arch method that is called.

use flushfuzz::arch::recording::{Calls, Recording};
use flushfuzz::arch::{
    arm64::Arm64, null::Null, parisc::Parisc, r4k::MipsR4k, riscv::Riscv, sh4::Sh4, v6::ArmV6,
    v7::ArmV7, vivt::ArmVivt, Arch,
};
use flushfuzz::corpus::{hand_seeds, RandomOps};
use flushfuzz::model::Model;
use flushfuzz::op::Op;
use flushfuzz::paths::Catalog;
use flushfuzz::preset::{self, Preset};
use flushfuzz::run::RunOptions;
use std::collections::{BTreeMap, BTreeSet};

/// Methods the scheduler and the runner call on a path's behalf wherever it runs (a context
/// switch into its address space), which no path declares.
const ANYWHERE: &[&str] = &["switch_mm"];

fn record<A: Arch + Clone>(
    p: &Preset,
    arch: A,
    inputs: &[Vec<Op>],
) -> (Calls, std::sync::Arc<Catalog>) {
    let r = Recording::new(arch);
    let calls = r.calls();
    let m = Model::new(p.clone(), r);
    for ops in inputs {
        m.run(ops, RunOptions::default());
    }
    (calls, m.paths().catalog().clone())
}

#[test]
fn every_path_calls_what_it_declares_and_declares_what_it_calls() {
    let mut seen: BTreeSet<(&'static str, &'static str)> = BTreeSet::new();
    let mut catalog = None;
    for p in preset::all() {
        let mut inputs = hand_seeds(&p.name).unwrap_or_default();
        let mut rnd = RandomOps::new(0x9a7e5);
        inputs.extend((0..10_000).map(|_| rnd.ops()));
        let (calls, c) = match p.arch.as_str() {
            "null" => record(&p, Null, &inputs),
            "arm-vivt" => record(&p, ArmVivt, &inputs),
            "arm-v6" => record(&p, ArmV6, &inputs),
            "arm-v7" => record(&p, ArmV7, &inputs),
            "mips-r4k" => record(&p, MipsR4k, &inputs),
            "parisc" => record(&p, Parisc, &inputs),
            "arm64" => record(&p, Arm64, &inputs),
            "riscv" => record(&p, Riscv, &inputs),
            "sh4" => record(&p, Sh4, &inputs),
            other => panic!("preset {} has arch {other} this test does not know", p.name),
        };
        seen.extend(calls.borrow().iter().copied());
        catalog = Some(c);
    }
    if std::env::var_os("FLUSHFUZZ_DUMP_CALLS").is_some() {
        let mut by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (p, a) in &seen {
            by.entry(p).or_default().push(a);
        }
        for (p, a) in by {
            eprintln!("CALLS {p}: {}", a.join(" "));
        }
    }
    let catalog = catalog.expect("presets exist");
    let declared: BTreeMap<&str, BTreeSet<&str>> = catalog
        .paths()
        .iter()
        .map(|p| (p.name, p.calls.iter().copied().collect()))
        .collect();
    let undeclared: Vec<String> = seen
        .iter()
        .filter(|(path, api)| *path != "idle" && !ANYWHERE.contains(api))
        .filter(|(path, api)| !declared.get(path).is_some_and(|d| d.contains(api)))
        .map(|(path, api)| format!("{path} calls {api}"))
        .collect();
    // A declared call no shipped arch makes through the path on these inputs is reported (it
    // may need a rarer input), but every declared name must be an arch method.
    for (path, d) in &declared {
        let rare: Vec<&str> = d
            .iter()
            .copied()
            .filter(|api| !seen.contains(&(*path, *api)))
            .collect();
        if !rare.is_empty() {
            eprintln!(
                "note: {path} did not call {} on these inputs",
                rare.join(", ")
            );
        }
    }
    let unmade: Vec<String> = declared
        .iter()
        .flat_map(|(path, d)| d.iter().map(move |api| (*path, *api)))
        .filter(|(_, api)| !flushfuzz::arch::recording::METHODS.contains(api))
        .map(|(path, api)| format!("{path} declares {api}, which is no arch method"))
        .collect();
    assert!(
        undeclared.is_empty() && unmade.is_empty(),
        "undeclared: {undeclared:#?}\nunmade: {unmade:#?}"
    );
}

/// The step of the first logged event whose text contains `needle`, if any.
fn first_step(events: &[flushfuzz::event::Logged], needle: &str) -> Option<u32> {
    events
        .iter()
        .find(|e| e.event.to_string().contains(needle))
        .map(|e| e.step)
}

/// A thread's store faulting on a VMA that a concurrent `fork` has not reached yet: where the
/// arch handles user faults under per-VMA locks (ARMv6 here), the fault runs under the VMA's
/// read lock while `fork` holds `mmap_lock`, and the store lands before the child exists; where
/// it does not (MIPS R4K), the fault waits for `mmap_lock` until `fork` is done.
#[test]
fn a_user_fault_during_fork_runs_under_its_vma_lock_where_the_arch_has_one() {
    let ops = "start T0 cpu0 fork\nstep T0 cpu0\nstart T1 cpu0 store page=8 off=0\n\
               step T1 cpu0\nstep T1 cpu0\nstep T1 cpu0\nstep T0 cpu0\nstep T0 cpu0\n\
               step T0 cpu0\nstep T0 cpu0\nstep T0 cpu0\n";
    for (preset, per_vma) in [
        ("nfs-vmap-alias-fixed", true),
        ("fork-cow-alias-fixed", false),
    ] {
        let text = format!("flushfuzz-trace 1\npreset {preset}\nexpect none\n{ops}");
        let l = flushfuzz::harness::load_bytes(text.as_bytes(), None).unwrap();
        let r = l.model.run(&l.ops, RunOptions { log: true });
        assert!(r.violation.is_none(), "{preset}");
        let child = first_step(&r.events, "child process").expect("the fork completes");
        let store = first_step(&r.events, "(user)").expect("the store lands");
        let vma_locked = first_step(&r.events, "lock_vma_under_rcu").is_some();
        assert_eq!(vma_locked, per_vma, "{preset}");
        assert_eq!(
            store < child,
            per_vma,
            "{preset}: store at step {store}, child at {child}"
        );
    }
}

/// The event texts of a run of `ops` (trace lines) on `preset`, which must find nothing.
fn clean_events(preset: &str, ops: &str) -> Vec<String> {
    let text = format!("flushfuzz-trace 1\npreset {preset}\nexpect none\n{ops}");
    let l = flushfuzz::harness::load_bytes(text.as_bytes(), None).unwrap();
    let r = l.model.run(&l.ops, RunOptions { log: true });
    assert!(r.violation.is_none(), "{preset}");
    r.events.iter().map(|e| e.event.to_string()).collect()
}

/// The frame each `set_pte_at` of `mm 0` maps, in order.
fn mapped_frames(events: &[String]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| e.strip_prefix("set_pte_at(mm 0, "))
        .map(|e| {
            let pfn = e.rsplit("pfn ").next().unwrap().trim_end_matches(')');
            pfn.parse().unwrap()
        })
        .collect()
}

/// Read faults of anonymous memory and `UFFDIO_ZEROPAGE` map the one zero page, allocating
/// nothing; a write to it takes a fresh page, cleared for the user's address.
#[test]
fn anonymous_reads_and_uffd_zeropage_map_the_zero_page_and_a_write_copies_it() {
    for preset in ["nfs-vmap-alias-fixed", "fork-cow-alias-fixed", "coherent"] {
        let ev = clean_events(
            preset,
            "start T0 cpu0 load page=0 off=0\nstep T0 cpu0\nstep T0 cpu0\n\
             start T0 cpu0 load page=1 off=0\nstep T0 cpu0\nstep T0 cpu0\n\
             start T0 cpu0 uffd-zeropage dst=2\nstep T0 cpu0\nstep T0 cpu0\n",
        );
        let frames = mapped_frames(&ev);
        assert_eq!(frames.len(), 3, "{preset}: {ev:#?}");
        assert!(
            frames.iter().all(|&f| f == frames[0]),
            "{preset}: {frames:?}"
        );
        assert!(!ev.iter().any(|e| e.contains("allocated")), "{preset}");
        assert!(
            ev.iter().any(|e| e.starts_with("mfill_atomic_zeropage")),
            "{preset}"
        );

        let ev = clean_events(
            preset,
            "start T0 cpu0 load page=0 off=0\nstep T0 cpu0\nstep T0 cpu0\n\
             start T0 cpu0 store page=0 off=0\nstep T0 cpu0\nstep T0 cpu0\nstep T0 cpu0\n\
             start T0 cpu0 load page=0 off=0\nstep T0 cpu0\n",
        );
        let frames = mapped_frames(&ev);
        assert_eq!(frames.len(), 2, "{preset}: {ev:#?}");
        assert_ne!(frames[0], frames[1], "{preset}");
        assert!(ev.iter().any(|e| e.starts_with("wp_page_copy")), "{preset}");
        assert!(
            ev.iter().any(|e| e.starts_with("clear_user_highpage")),
            "{preset}"
        );
    }
}

/// A parent's thread stores to an anonymous page between `fork`'s `flush_cache_dup_mm` and
/// the write-protect of the page's PTEs, so the store stays in the parent's user line (VIVT),
/// and ksmd then merges the child's copy of the page: `pages_identical` reads the page through
/// the linear map without that store. The child may see the page as it was before the store or
/// after it (a fork window), and the merge changes only the child's mapping, so the comparison
/// is judged as a copy for the child is: nothing to report. (The same stale comparison for the
/// writer's own address space is mainline's KSM hole, `crashes/*ksm*`.)
#[test]
fn ksm_merging_a_childs_page_may_miss_a_store_made_in_the_fork_window() {
    let ev = clean_events(
        "gup-anon-alias-fixed",
        "start T0 cpu0 store page=0 off=0\n\
         step T0 cpu0\n\
         step T0 cpu0\n\
         step T0 cpu0\n\
         start T0 cpu0 store page=61 off=2\n\
         step T0 cpu0\n\
         start T0 cpu0 ring-read ring=120 page=230 off=159\n\
         start T1 cpu0 fork\n\
         step T0 cpu0\n\
         start T0 cpu0 ring-read ring=120 page=230 off=159\n\
         start T1 cpu0 ptrace-poke target=61 page=93 off=198\n\
         step T0 cpu0\n\
         start T1 cpu0 fork\n\
         start K0 cpu0 ksm-merge page=42 with=27\n",
    );
    let at = |needle: &str| {
        ev.iter()
            .position(|e| e.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {ev:#?}"))
    };
    let flushed = at("flush_cache_dup_mm");
    let store = flushed
        + ev[flushed..]
            .iter()
            .position(|e| e.starts_with("store #") && e.contains("(user)"))
            .expect("a user store after the flush");
    let protected = at("-> pfn 1 ro");
    assert!(
        flushed < store && store < protected,
        "the store is in the window: {flushed} {store} {protected}"
    );
    assert!(
        at("replace_page(mm 1, page 1") > protected,
        "the child's page is merged"
    );
}

/// ARMv7 with an aliasing VIPT I-cache whose ptrace write makes the I-side coherent through
/// the kernel address it wrote (`__cpuc_coherent_kern_range`) instead of through a window at
/// the user's colour (`flush_icache_alias`).
#[derive(Clone, Copy, Debug, Default)]
struct V7PtraceThroughKernelAddress(ArmV7);

impl Arch for V7PtraceThroughKernelAddress {
    type Base = ArmV7;
    fn base(&self) -> &ArmV7 {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm-v7-ptrace-through-kernel-address"
    }
    async fn copy_to_user_page<O: Arch>(
        &self,
        cx: &flushfuzz::world::Cx<O>,
        mm: flushfuzz::addr::MmId,
        pfn: flushfuzz::addr::Pfn,
        vpn: flushfuzz::addr::Vpn,
        off: u64,
    ) {
        let k = flushfuzz::kernel::kmap::kmap(cx, pfn).await;
        cx.preempt_disable();
        let v = cx.fresh();
        cx.kstore(k + off, v, false);
        if cx.vma(mm, vpn).is_some_and(|vma| vma.exec) {
            cx.arch().flush_icache_range(cx, k + off, k + off + 1).await;
        }
        cx.preempt_enable();
        flushfuzz::kernel::kmap::kunmap(cx, pfn).await;
    }
}

/// A process forks a tracer, writes and synchronises a page of executable anonymous memory,
/// runs it, and the tracer pokes an instruction into it that the tracee then fetches: each
/// action run to its end.
fn poke_into_run_text() -> String {
    let mut ops = String::new();
    for (actor, action, steps) in [
        ("T0", "fork", 12),
        ("T0", "store page=0 off=0", 8),
        ("T0", "mprotect page=0 write=true exec=true", 8),
        ("T0", "cacheflush page=0", 8),
        ("T0", "fetch page=0 off=0", 8),
        ("T2", "ptrace-poke target=0 page=0 off=0", 12),
        ("T0", "fetch page=0 off=0", 8),
    ] {
        ops.push_str(&format!("start {actor} cpu0 {action}\n"));
        ops.push_str(&format!("step {actor} cpu0\n").repeat(steps));
    }
    ops
}

/// A tracer pokes an instruction into a page of executable anonymous memory its tracee has
/// already run (a line of the tracee's colour in the I-cache), on `armv7`, whose VIPT I-cache
/// has two colours: ARM's `__flush_ptrace_access` reaches that line through
/// `flush_icache_alias`, and the tracee fetches the new instruction. The same write made
/// coherent through the kernel address (another colour) leaves the old line for the fetch.
#[test]
fn a_ptrace_write_into_text_reaches_the_icache_lines_of_the_tracees_colour() {
    let ops = poke_into_run_text();
    let ev = clean_events("armv7", &ops);
    assert!(
        ev.iter().any(|e| e.starts_with("copy_to_user_page(")),
        "the poke is made: {ev:#?}"
    );
    let text = format!("flushfuzz-trace 1\npreset armv7\nexpect none\n{ops}");
    let l = flushfuzz::harness::load_bytes(text.as_bytes(), None).unwrap();
    let p = preset::by_name("armv7").unwrap();
    let r =
        Model::new(p, V7PtraceThroughKernelAddress::default()).run(&l.ops, RunOptions::default());
    let v = r.violation.expect("the old instruction is fetched");
    assert!(
        v.signature()
            .starts_with("stale-fetch:user fetch@user<-copy_to_user_page"),
        "{}",
        v.signature()
    );
}

/// arm64 whose ptrace write (`copy_to_user_page`) reads `CTR_EL0.IDC` as if it meant `.DIC`
/// too: where instruction fills see the D-cache it leaves out the I-cache invalidation as well
/// as the clean.
#[derive(Clone, Copy, Debug, Default)]
struct Arm64IdcTakenForDic(flushfuzz::arch::arm64::Arm64);

impl Arch for Arm64IdcTakenForDic {
    type Base = flushfuzz::arch::arm64::Arm64;
    fn base(&self) -> &flushfuzz::arch::arm64::Arm64 {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm64-taking-idc-for-dic"
    }
    async fn copy_to_user_page<O: Arch>(
        &self,
        cx: &flushfuzz::world::Cx<O>,
        mm: flushfuzz::addr::MmId,
        pfn: flushfuzz::addr::Pfn,
        vpn: flushfuzz::addr::Vpn,
        off: u64,
    ) {
        use flushfuzz::arch::arm64;
        let k = flushfuzz::kernel::kmap::kmap(cx, pfn).await;
        let v = cx.fresh();
        cx.kstore(k + off, v, false);
        if !arm64::has_cache_idc(cx) && cx.vma(mm, vpn).is_some_and(|vma| vma.exec) {
            arm64::sync_icache_aliases(cx, k + off, k + off + 1);
        }
        flushfuzz::kernel::kmap::kunmap(cx, pfn).await;
    }
}

/// A tracer pokes an instruction into a page its tracee has already run, on `arm64-idc`, whose
/// I-cache fills from the D-side but ignores stores: mainline's `caches_clean_inval_pou` leaves
/// out only the clean there, and the tracee fetches the new instruction; an arch that also
/// leaves out the invalidation (taking IDC for DIC) leaves the old line for the fetch. On
/// `arm64-idc-dic`, whose I-cache snoops, both halves are needless and the fetch is right.
#[test]
fn under_ctr_el0_idc_a_ptrace_write_into_text_still_invalidates_the_icache() {
    let ops = poke_into_run_text();
    let ev = clean_events("arm64-idc", &ops);
    assert!(
        ev.iter().any(|e| e.starts_with("copy_to_user_page(")),
        "the poke is made: {ev:#?}"
    );
    for (name, violates) in [("arm64-idc", true), ("arm64-idc-dic", false)] {
        let text = format!("flushfuzz-trace 1\npreset {name}\nexpect none\n{ops}");
        let l = flushfuzz::harness::load_bytes(text.as_bytes(), None).unwrap();
        let p = preset::by_name(name).unwrap();
        let r = Model::new(p, Arm64IdcTakenForDic::default()).run(&l.ops, RunOptions::default());
        match r.violation {
            Some(v) => assert!(
                violates
                    && v.signature()
                        .starts_with("stale-fetch:user fetch@user<-copy_to_user_page"),
                "{name}: {}",
                v.signature()
            ),
            None => assert!(!violates, "{name}: the old instruction is fetched"),
        }
    }
}

/// Reclaim chooses an anonymous page to swap out, and before it unmaps the page a direct-I/O
/// read pins it and hands it to the device. `try_to_unmap_one` cannot share a page that may be
/// pinned (`folio_try_share_anon_rmap_pte`): it maps the page again and the page is not written
/// to swap, whose device would otherwise read a buffer the other transfer is filling (on
/// `armv7`, whose `dma_map_page` for a transfer from the device drops the dirty zeros of the
/// fault).
#[test]
fn reclaim_keeps_an_anonymous_page_pinned_for_direct_io_after_it_was_chosen() {
    let ev = clean_events(
        "armv7",
        "start T1 cpu0 direct-io page=0 to-device=false\n\
         step T1 cpu0\n\
         start T0 cpu0 swap-out page=0\n\
         step T1 cpu0\n\
         step T1 cpu0\n\
         step T0 cpu0\n\
         step T0 cpu0\n",
    );
    let chosen = ev
        .iter()
        .position(|e| e.starts_with("shrink_folio_list("))
        .expect("reclaim chooses the page");
    let pinned = ev
        .iter()
        .position(|e| e.starts_with("dma_map_page(") && e.contains("FromDevice"))
        .expect("the direct I/O maps it for the device");
    let unmap = ev
        .iter()
        .position(|e| e.starts_with("try_to_unmap_one("))
        .expect("reclaim tries to unmap it");
    assert!(chosen < pinned && pinned < unmap, "{ev:#?}");
    assert!(
        ev[unmap..].iter().any(|e| e == "pte 0x0: -> pfn 12 w"),
        "the mapping is put back: {ev:#?}"
    );
    assert!(
        !ev.iter().any(|e| e.starts_with("swap_writepage(")),
        "nothing is written to swap: {ev:#?}"
    );
}

/// `UFFDIO_COPY` from a buffer a direct-I/O read is filling: the program races its own I/O, so
/// the copy that may not sleep gives up on the buffer and the one that may waits for the I/O
/// to end, as every `copy_from_user` of the model does. The copy then reads what the device
/// wrote.
#[test]
fn uffd_copy_from_a_buffer_under_direct_io_waits_for_it() {
    let ev = clean_events(
        "armv7",
        "start T0 cpu0 direct-io page=0 to-device=false\n\
         start T1 cpu0 uffd-copy dst=13 src=0\n\
         step T0 cpu0\n\
         step T0 cpu0\n",
    );
    let unmapped = ev
        .iter()
        .position(|e| e.starts_with("dma_unmap_page("))
        .expect("the direct I/O ends");
    let copied = ev
        .iter()
        .position(|e| e.starts_with("load 0x0 (user) = "))
        .unwrap_or_else(|| panic!("the copy reads the source: {ev:#?}"));
    assert!(unmapped < copied, "{ev:#?}");
}

/// A page-cache page `vmsplice` pinned into a pipe (`get_user_pages`) is referenced, not
/// locked: a `read()` of the same file page copies it at once rather than waiting for the pipe
/// to let go of it (`filemap_read` waits only for `PG_locked`, which a GUP pin does not set).
#[test]
fn a_page_pinned_in_a_pipe_is_not_locked_for_a_read_of_its_file() {
    let ev = clean_events(
        "armv7",
        "start T0 cpu0 mmap file=1 pgoff=1 at=155 shared=false exec=false fixed=true\n\
         start T1 cpu0 vmsplice page=89 off=220\n\
         step T1 cpu0\nstep T1 cpu0\nstep T1 cpu0\nstep T1 cpu0\n\
         start T0 cpu0 read file=1 index=3 off=0 page=0\n\
         step T0 cpu0\nstep T0 cpu0\nstep T0 cpu0\n",
    );
    let pinned = ev
        .iter()
        .position(|e| e.starts_with("get_user_pages(mm 0, page 29)"))
        .unwrap_or_else(|| panic!("vmsplice pins the file page: {ev:#?}"));
    let read = ev
        .iter()
        .position(|e| e.starts_with("sys_read(file 1 page 3)"))
        .unwrap_or_else(|| panic!("the read starts: {ev:#?}"));
    assert!(pinned < read, "{ev:#?}");
    assert!(
        ev[read..].iter().any(|e| e.contains("(pkmap)")),
        "the read copies the page through its kmap: {ev:#?}"
    );
    assert!(
        ev[read..]
            .iter()
            .any(|e| e.starts_with("store ") && e.contains("(user)")),
        "and stores it to the user's buffer: {ev:#?}"
    );
}
