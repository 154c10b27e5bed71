//! Fuzzing a flush implementation written outside flushfuzz, with the public API alone.
//!
//! `MyPort` is the kind of `Arch` an architecture maintainer writes for an aliasing VIPT
//! D-cache: it gets most things right (colour-window copies, `flush_anon_page`, vmap flushes,
//! the I-cache sync before `set_pte_at`), but its `flush_dcache_page` only writes back the
//! kernel alias. The example runs a random campaign on it (the same machine as the
//! `nfs-vmap-alias-fixed` preset), minimizes the first violation and prints the explanation.
//!
//! ```sh
//! cargo run --release --example own_arch
//! ```
//!
//! The same `Model::run` call is what a libFuzzer target (`fuzz_target!(|data: &[u8]| ...)`,
//! decoding ops with `flushfuzz::choice::Bytes`) or a bolero property would run.

use flushfuzz::addr::{MmId, Pa, Pfn, Va, Vpn};
use flushfuzz::arch::{generic, null::Null, Arch};
use flushfuzz::choice::{run_source, Random};
use flushfuzz::machine::{CacheOp, Pte, Scope};
use flushfuzz::minimize::minimize;
use flushfuzz::model::Model;
use flushfuzz::op::DmaDir;
use flushfuzz::run::RunOptions;
use flushfuzz::trace::Trace;
use flushfuzz::world::Cx;
use flushfuzz::{explain, preset};

/// A flush implementation for an aliasing VIPT D-cache, written out of tree.
#[derive(Clone, Copy, Debug, Default)]
struct MyPort;

/// Cleans and invalidates every cache of every CPU.
fn flush_everything<O: Arch>(cx: &Cx<O>) {
    cx.dcache_all(CacheOp::Flush, Scope::AllCpus);
    cx.icache_all(Scope::AllCpus);
}

impl Arch for MyPort {
    type Base = Null;

    fn base(&self) -> &Null {
        &Null
    }

    fn name(&self) -> &'static str {
        "my-port"
    }

    async fn flush_cache_mm<O: Arch>(&self, cx: &Cx<O>, _mm: MmId) {
        flush_everything(cx);
    }

    async fn flush_cache_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        _mm: MmId,
        _s: Vpn,
        _e: Vpn,
        _exec: bool,
    ) {
        flush_everything(cx);
    }

    async fn flush_cache_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        _mm: MmId,
        vpn: Vpn,
        pfn: Pfn,
        exec: bool,
    ) {
        generic::colour_alias_op(cx, pfn, vpn * cx.page_size(), CacheOp::Flush);
        if exec {
            cx.icache_all(Scope::AllCpus);
        }
    }

    async fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) {
        // Writes back the kernel alias only: user mappings of page-cache pages are forgotten.
        generic::kernel_alias_op(cx, pfn, CacheOp::Flush).await;
    }

    async fn flush_anon_page<O: Arch>(&self, cx: &Cx<O>, _mm: MmId, pfn: Pfn, vpn: Vpn) {
        if cx.page_is_anon(pfn) {
            generic::colour_alias_op(cx, pfn, vpn * cx.page_size(), CacheOp::Flush);
            generic::kernel_alias_op(cx, pfn, CacheOp::Flush).await;
        }
    }

    async fn flush_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        cx.dcache_range(CacheOp::Flush, va, va + len, Scope::AllCpus);
    }

    async fn invalidate_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        cx.dcache_range(CacheOp::Flush, va, va + len, Scope::AllCpus);
    }

    async fn flush_cache_vmap<O: Arch>(&self, cx: &Cx<O>, _s: Va, _e: Va) {
        flush_everything(cx);
    }

    async fn flush_cache_vunmap<O: Arch>(&self, cx: &Cx<O>, _s: Va, _e: Va) {
        flush_everything(cx);
    }

    async fn flush_icache_user_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        cx.dcache_range(CacheOp::Clean, start, end, Scope::AllCpus);
        cx.icache_all(Scope::AllCpus);
    }

    async fn set_pte_at<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, pte: Pte) {
        // Make the new mapping's view coherent before anyone can use it.
        generic::kernel_alias_op(cx, pte.pfn, CacheOp::Flush).await;
        generic::colour_alias_op(cx, pte.pfn, vpn * cx.page_size(), CacheOp::Flush);
        if pte.exec {
            cx.icache_all(Scope::AllCpus);
        }
        cx.write_pte(Some(mm), vpn, pte);
    }

    async fn copy_user_highpage<O: Arch>(
        &self,
        cx: &Cx<O>,
        to: Pfn,
        from: Pfn,
        vpn: Vpn,
        _mm: MmId,
    ) {
        // Copy between colour windows at the user's colour, after discarding the destination's
        // kernel alias.
        if let Some(k) = cx.linear_va(to) {
            cx.dcache_range(CacheOp::Flush, k, k + cx.page_size(), Scope::AllCpus);
        }
        cx.preempt_disable();
        let kfrom = cx.map_colour_window(0, vpn * cx.page_size(), from);
        let kto = cx.map_colour_window(1, vpn * cx.page_size(), to);
        generic::copy_page(cx, kto, kfrom);
        cx.unmap_colour_window(kfrom);
        cx.unmap_colour_window(kto);
        cx.preempt_enable();
    }

    async fn clear_user_highpage<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, vpn: Vpn) {
        if let Some(k) = cx.linear_va(pfn) {
            cx.dcache_range(CacheOp::Flush, k, k + cx.page_size(), Scope::AllCpus);
        }
        cx.preempt_disable();
        let w = cx.map_colour_window(1, vpn * cx.page_size(), pfn);
        generic::clear_page(cx, w);
        cx.unmap_colour_window(w);
        cx.preempt_enable();
    }

    async fn copy_to_user_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        _mm: MmId,
        pfn: Pfn,
        vpn: Vpn,
        off: u64,
    ) {
        generic::colour_alias_op(cx, pfn, vpn * cx.page_size(), CacheOp::Flush);
        generic::copy_to_user_page(cx, pfn, vpn, off).await;
        generic::kernel_alias_op(cx, pfn, CacheOp::Flush).await;
        cx.icache_all(Scope::AllCpus);
    }

    async fn sync_dma_for_device<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        generic::dma_maint(cx, pa, len, dir, true).await;
    }

    async fn sync_dma_for_cpu<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        generic::dma_maint(cx, pa, len, dir, false).await;
    }

    fn mmap_colour_pages<O: Arch>(&self, cx: &Cx<O>, _shared: bool) -> u64 {
        cx.dcache_geometry().colours(cx.page_size() as u32)
    }

    fn rejects_incongruent_fixed(&self) -> bool {
        true
    }
}

fn main() {
    // The machine of a shipped preset; the arch is ours.
    let p = preset::by_name("nfs-vmap-alias-fixed").expect("preset");
    let model = Model::new(p, MyPort);
    for seed in 0..200_000u64 {
        let (report, ops) = run_source(&model, &mut Random::new(seed, 40), RunOptions::default());
        let Some(v) = report.violation else { continue };
        println!(
            "seed {seed}: {} after {} ops; minimizing",
            v.signature(),
            ops.len()
        );
        let m = minimize(&model, &ops).expect("the violation reproduces");
        let logged = model.run(&m.ops, RunOptions { log: true });
        println!(
            "{}",
            Trace::new(&model, &m.ops, Some(m.signature.clone()))
                .to_text(&["found by examples/own_arch.rs on MyPort".into()])
        );
        println!("{}", explain::timeline(&model, &m.ops, &logged));
        println!(
            "{}",
            explain::explain(
                logged.violation.as_ref().expect("violation"),
                model.preset(),
                &logged.actors
            )
        );
        return;
    }
    println!("no violation in 200000 random runs");
}
