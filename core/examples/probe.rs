use flushfuzz::op::{Action, Op, DmaDir};
use flushfuzz::preset;
use flushfuzz::run::{run, RunOptions};

fn s(actor: u8, action: Action) -> Op { Op::Start { actor, cpu: 0, action } }
fn sc(actor: u8, cpu: u8, action: Action) -> Op { Op::Start { actor, cpu, action } }
fn st(actor: u8, n: usize) -> Vec<Op> { vec![Op::Step { actor, cpu: 0 }; n] }
fn stc(actor: u8, cpu: u8, n: usize) -> Vec<Op> { vec![Op::Step { actor, cpu }; n] }

fn show(name: &str, ops: Vec<Op>) {
    for p in [name.to_string(), format!("{name}-fixed")] {
        let pr = preset::by_name(&p).unwrap();
        let r = run(&pr, &ops, RunOptions { log: false });
        match &r.violation {
            Some(v) => println!("{p}: {} step {} pa {:#x} alias {:?} exp {} obs {} from {}", v.signature(), v.step, v.pa, v.alias, v.expected, v.observed, v.from),
            None => println!("{p}: none (ops {}, steps {})", r.ops_applied, r.steps),
        }
    }
}

fn main() {
    // 001: store, then gup read.
    let mut o = vec![s(0, Action::Store { page: 1, off: 0 })]; o.extend(st(0, 20));
    o.push(s(0, Action::Gup { page: 1, off: 0, write: false }));
    show("gup-anon-alias", o);
    // 000: readdir at vmalloc page 1.
    show("nfs-vmap-alias", vec![s(3, Action::Readdir { at: 1, pages: 0 })]);
    // 004: T0 store U; T0 fork step1; T1 store U; T0 finish; T1 store U.
    let mut o = vec![s(0, Action::Store { page: 1, off: 0 })]; o.extend(st(0, 20));
    o.push(s(0, Action::Fork));
    o.push(s(1, Action::Store { page: 1, off: 0 }));
    o.extend(st(0, 20));
    o.push(s(1, Action::Store { page: 1, off: 1 }));
    show("fork-cow-alias", o);
    // 002: T0 on cpu0 fetch text page; step until set_pte; T1 on cpu1 fetch.
    let mut o = vec![sc(0, 0, Action::Fetch { page: 4, off: 0 })];
    for i in 0..12 { o.extend(stc(0, 0, 1)); o.push(sc(1, 1, Action::Fetch { page: 4, off: 0 })); let _ = i; }
    show("exec-icache-smp", o);
    // 003: K0 kmap-write H0 (buf1); K1 dma H0 from device (1 step); K0 kmap-write H1; K0 kmap-write H2; K1 finishes.
    let mut o = vec![s(3, Action::KmapWrite { buf: 1, off: 0 })]; o.extend(st(3, 5));
    o.push(s(4, Action::Dma { buf: 1, dir: DmaDir::FromDevice }));
    o.push(s(3, Action::KmapWrite { buf: 2, off: 0 })); o.extend(st(3, 5));
    o.push(s(3, Action::KmapWrite { buf: 3, off: 9 })); o.extend(st(3, 5));
    show("kmap-recycle-dma", o);
}
