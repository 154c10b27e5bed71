//! The raw access layer ([`flushfuzz::raw`]) against the cache model and the oracle, with no
//! kernel in between: the aliasing hazards every flush API exists to avoid must be reported, the
//! maintenance that avoids them must silence the report, and fully coherent hardware must never
//! be reported whatever the raw ops do.

use arbitrary::{Arbitrary, Unstructured};
use flushfuzz::addr::{AliasKind, Pa, Va};
use flushfuzz::event::{Side, Source};
use flushfuzz::geometry::{presets as geo, CacheGeometry, Indexing, WritePolicy};
use flushfuzz::machine::{Broadcast, IcacheCoherence, MachineConfig, Speculation};
use flushfuzz::oracle::Kind;
use flushfuzz::raw::{aliases, invalidate_is_flush, run_raw, RawOp, RawReport, RawViolation};

fn icache_of(d: CacheGeometry) -> CacheGeometry {
    CacheGeometry {
        policy: WritePolicy::WriteThrough,
        ..d
    }
}

/// One CPU, write-back write-allocate D-cache, non-snooping I-cache, non-coherent DMA: the
/// shape of the race presets' machines.
fn small(dcache: CacheGeometry, page_size: u32) -> MachineConfig {
    MachineConfig {
        cpus: 1,
        page_size,
        dcache,
        icache: icache_of(dcache),
        icache_coherence: IcacheCoherence::None,
        dcache_coherent: true,
        broadcast: Broadcast::CacheAndTlb,
        dma_coherent: false,
        lowmem_frames: 16,
        highmem_frames: 0,
        pkmap_slots: 2,
        speculation: Speculation::None,
        // Fields not set here keep the race presets' values.
        ..flushfuzz::preset::by_name("nfs-vmap-alias")
            .expect("race preset exists")
            .machine
    }
}

fn v6() -> MachineConfig {
    small(geo::SMALL_V6_4COLOUR, geo::SMALL_PAGE)
}

/// Fully coherent hardware: PIPT caches, snooping I-cache, coherent D-caches and DMA, two CPUs
/// with broadcast maintenance, speculative fills on both sides.
fn coherent() -> MachineConfig {
    let pipt = CacheGeometry {
        indexing: Indexing::Pipt,
        ..geo::SMALL_PIPT
    };
    MachineConfig {
        cpus: 2,
        icache: icache_of(pipt),
        icache_coherence: IcacheCoherence::Snooping,
        dma_coherent: true,
        dcache_coherent: true,
        broadcast: Broadcast::CacheAndTlb,
        speculation: Speculation::Both,
        ..small(pipt, geo::SMALL_PAGE)
    }
}

/// Every aliasing machine the scenarios run on, by name: the scaled ARMv6, XScale and R4K
/// geometries, and the real R4K and ARMv6 ones (only ratios may matter).
fn aliasing_machines() -> Vec<(&'static str, MachineConfig)> {
    vec![
        ("v6-4colour", v6()),
        ("vivt", small(geo::SMALL_VIVT, geo::SMALL_PAGE)),
        ("r4k", small(geo::SMALL_R4K, geo::SMALL_PAGE)),
        ("r4k-real", small(geo::R4K, geo::REAL_PAGE)),
        ("v6-4colour-real", small(geo::ARMV6_4COLOUR, geo::REAL_PAGE)),
    ]
}

/// The byte offset the scenarios use: not the first byte of a line or of a page.
const OFF: u8 = 5;

/// Two aliases of frame 0 that occupy different D-lines: A is its linear-map page, B the first
/// of its other aliases whose D-cache key differs. Returns their ids and byte addresses.
fn incongruent_pair(cfg: &MachineConfig) -> (u8, u8, Va, Va) {
    let all = aliases(cfg);
    let pa = OFF as Pa;
    let key = |va: Va| cfg.dcache.key(va + OFF as Va, pa, None);
    let a = &all[0];
    assert_eq!((a.pfn, a.kind), (0, AliasKind::Linear));
    let b = all
        .iter()
        .position(|x| x.pfn == 0 && key(x.va) != key(a.va))
        .expect("an aliasing machine has an incongruent alias");
    (0, b as u8, a.va + OFF as Va, all[b].va + OFF as Va)
}

fn violation(cfg: &MachineConfig, ops: &[RawOp]) -> RawViolation {
    run_raw(cfg, ops)
        .violation
        .unwrap_or_else(|| panic!("expected a violation for {ops:?}"))
}

fn d_line(cfg: &MachineConfig, va: Va, dirty: bool) -> impl Fn(&Source) -> bool + '_ {
    move |s| matches!(*s, Source::Cache { side: Side::D, dirty: d, line_va, .. } if d == dirty && line_va == cfg.dcache.line_base(va))
}

/// Protects the basic aliasing hazard: a store through one alias stays in its dirty line and a
/// load through an incongruent alias fills from memory and reads the old value. The report must
/// name both aliases (the reader's, and the writer's dirty line holding the newer value), or a
/// reader of it cannot tell which two views disagreed.
#[test]
fn store_through_one_alias_is_stale_through_an_incongruent_one() {
    for (name, cfg) in aliasing_machines() {
        let (a, b, va_a, va_b) = incongruent_pair(&cfg);
        let v = violation(
            &cfg,
            &[
                RawOp::Store {
                    cpu: 0,
                    alias: a,
                    off: OFF,
                },
                RawOp::Load {
                    cpu: 0,
                    alias: b,
                    off: OFF,
                },
            ],
        );
        assert_eq!(
            (v.kind, v.op, v.pa, v.cpu),
            (Kind::StaleLoad, Some(1), OFF as Pa, Some(0)),
            "{name}"
        );
        assert_eq!((v.va, v.alias), (va_b, AliasKind::Vmap), "{name}");
        assert_eq!(v.observed, OFF as u32 + 1, "{name}: the initial contents");
        assert!(
            d_line(&cfg, va_b, false)(&v.from),
            "{name}: read from B's fresh clean line: {}",
            v.from
        );
        assert!(
            v.newest_at.iter().any(d_line(&cfg, va_a, true)),
            "{name}: A's dirty line holds the newer value: {v}"
        );
        assert!(!v.newest_at.contains(&Source::Memory), "{name}: {v}");
        assert_eq!(
            (v.last_write.step, v.last_write.va, v.last_write.alias),
            (1, va_a, Some(AliasKind::Linear)),
            "{name}"
        );
    }
}

/// Protects the fix for that hazard: cleaning the writer's alias and invalidating the reader's
/// (what `flush_dcache_page` and `invalidate_kernel_vmap_range` amount to) makes the store
/// visible. The reader's alias is loaded first so that the invalidation has a stale line to
/// drop; without it the same sequence is reported, so the invalidation is what matters.
#[test]
fn clean_writer_and_invalidate_reader_make_the_store_visible() {
    for (name, cfg) in aliasing_machines() {
        let (a, b, _, va_b) = incongruent_pair(&cfg);
        let before = [
            RawOp::Load {
                cpu: 0,
                alias: b,
                off: OFF,
            },
            RawOp::Store {
                cpu: 0,
                alias: a,
                off: OFF,
            },
            RawOp::Clean {
                cpu: 0,
                alias: a,
                off: OFF,
            },
        ];
        let load = RawOp::Load {
            cpu: 0,
            alias: b,
            off: OFF,
        };
        let fixed = [
            &before[..],
            &[
                RawOp::Invalidate {
                    cpu: 0,
                    alias: b,
                    off: OFF,
                },
                load,
            ],
        ]
        .concat();
        assert_eq!(
            run_raw(&cfg, &fixed),
            RawReport { violation: None },
            "{name}"
        );
        let unfixed = [&before[..], &[load]].concat();
        let v = violation(&cfg, &unfixed);
        assert_eq!(
            (v.kind, v.op, v.va),
            (Kind::StaleLoad, Some(3), va_b),
            "{name}"
        );
        assert!(
            d_line(&cfg, va_b, false)(&v.from),
            "{name}: B's stale clean line: {v}"
        );
        assert!(
            v.newest_at.contains(&Source::Memory),
            "{name}: the clean put it in memory: {v}"
        );
    }
}

/// Protects the write-back hazard: a dirty line of one alias holding an older value than
/// memory (which a flush of the other alias made newest) would be written back over it. The
/// audit must report it as a lost write from that dirty line.
#[test]
fn dirty_alias_older_than_memory_is_a_lost_write() {
    for (name, cfg) in aliasing_machines() {
        let (a, b, va_a, va_b) = incongruent_pair(&cfg);
        let ops = [
            RawOp::Store {
                cpu: 0,
                alias: b,
                off: OFF,
            },
            RawOp::Store {
                cpu: 0,
                alias: a,
                off: OFF,
            },
            RawOp::Flush {
                cpu: 0,
                alias: a,
                off: OFF,
            },
        ];
        let v = violation(&cfg, &ops);
        assert_eq!(
            (v.kind, v.op, v.pa, v.va, v.alias),
            (Kind::LostWrite, None, OFF as Pa, va_b, AliasKind::Vmap),
            "{name}"
        );
        assert!(
            d_line(&cfg, va_b, true)(&v.from),
            "{name}: B's dirty line: {v}"
        );
        assert_eq!(v.newest_at, vec![Source::Memory], "{name}");
        assert_eq!((v.last_write.step, v.last_write.va), (2, va_a), "{name}");
        assert!(
            v.observed < v.expected,
            "{name}: the dirty line holds the older stamp"
        );
        // Flushing B before A leaves nothing to lose: B's older value reaches memory first and
        // A's newer one lands over it.
        let both = [
            ops[0],
            ops[1],
            RawOp::Flush {
                cpu: 0,
                alias: b,
                off: OFF,
            },
            ops[2],
        ];
        assert_eq!(run_raw(&cfg, &both).violation, None, "{name}");
    }
}

/// Protects the choice documented in `raw`: a raw invalidate discards a dirty line, which is a
/// lost write on an aliasing machine, but on fully coherent hardware it is issued as a flush,
/// so the no-false-positive property below is about the hardware and not about misuse.
#[test]
fn raw_invalidate_discards_dirty_data_except_on_fully_coherent_hardware() {
    let ops = [
        RawOp::Store {
            cpu: 0,
            alias: 0,
            off: OFF,
        },
        RawOp::Invalidate {
            cpu: 0,
            alias: 0,
            off: OFF,
        },
        RawOp::Load {
            cpu: 0,
            alias: 0,
            off: OFF,
        },
    ];
    assert!(!invalidate_is_flush(&v6()));
    let v = violation(&v6(), &ops);
    assert_eq!(
        (v.kind, v.op),
        (Kind::StaleLoad, Some(2)),
        "the store is gone"
    );
    assert!(v.newest_at.is_empty(), "{v}");
    assert!(invalidate_is_flush(&coherent()));
    assert_eq!(run_raw(&coherent(), &ops).violation, None);
}

/// Protects the streaming-DMA hazards on non-coherent devices: the device reads memory under a
/// dirty line (stale device read, fixed by a clean first), and a device write under a dirty line
/// is lost when the line is written back (fixed by invalidating, not flushing, afterwards).
#[test]
fn non_coherent_device_sees_memory_not_dirty_lines() {
    let cfg = v6();
    let store = RawOp::Store {
        cpu: 0,
        alias: 0,
        off: OFF,
    };
    let v = violation(&cfg, &[store, RawOp::DeviceRead { frame: 0 }]);
    assert_eq!(
        (v.kind, v.op, v.pa, v.from, v.cpu),
        (
            Kind::StaleDeviceRead,
            Some(1),
            OFF as Pa,
            Source::Memory,
            None
        )
    );
    assert_eq!(
        run_raw(
            &cfg,
            &[
                store,
                RawOp::Clean {
                    cpu: 0,
                    alias: 0,
                    off: OFF
                },
                RawOp::DeviceRead { frame: 0 }
            ]
        )
        .violation,
        None
    );

    let write = RawOp::DeviceWrite { frame: 0 };
    let v = violation(&cfg, &[store, write]);
    assert_eq!(
        (v.kind, v.op, v.last_write.alias),
        (Kind::LostWrite, None, None),
        "the dirty line is older than the device's data: {v}"
    );
    let v = violation(
        &cfg,
        &[
            store,
            write,
            RawOp::Flush {
                cpu: 0,
                alias: 0,
                off: OFF,
            },
        ],
    );
    assert_eq!(
        (v.kind, v.from, v.newest_at.len()),
        (Kind::LostWrite, Source::Memory, 0),
        "the write-back overwrote the device's data: {v}"
    );
    assert_eq!(
        run_raw(
            &cfg,
            &[
                store,
                write,
                RawOp::Invalidate {
                    cpu: 0,
                    alias: 0,
                    off: OFF
                },
                RawOp::Load {
                    cpu: 0,
                    alias: 0,
                    off: OFF
                }
            ]
        )
        .violation,
        None
    );
}

/// Protects the rule that fetches are judged only where the I-cache snoops: elsewhere a stale
/// I-line is allowed until software synchronises it, so reporting it would be a false positive;
/// where it snoops CPU stores but the device is not coherent, a device write leaves the I-line
/// stale and that is reported.
#[test]
fn fetches_are_judged_only_where_the_icache_snoops() {
    let fetch = RawOp::Fetch {
        cpu: 0,
        alias: 0,
        off: OFF,
    };
    let stale_i_line = [
        fetch,
        RawOp::Store {
            cpu: 0,
            alias: 0,
            off: OFF,
        },
        RawOp::Clean {
            cpu: 0,
            alias: 0,
            off: OFF,
        },
        fetch,
    ];
    assert_eq!(run_raw(&v6(), &stale_i_line).violation, None);
    let snooping = MachineConfig {
        icache_coherence: IcacheCoherence::Snooping,
        ..v6()
    };
    assert_eq!(
        run_raw(&snooping, &stale_i_line).violation,
        None,
        "the store dropped the I-line"
    );
    let v = violation(&snooping, &[fetch, RawOp::DeviceWrite { frame: 0 }, fetch]);
    assert_eq!((v.kind, v.op), (Kind::StaleFetch, Some(2)));
    assert!(matches!(v.from, Source::Cache { side: Side::I, .. }), "{v}");
    let synced = [
        fetch,
        RawOp::DeviceWrite { frame: 0 },
        RawOp::IcacheInvalidate {
            cpu: 0,
            alias: 0,
            off: OFF,
        },
        fetch,
    ];
    assert_eq!(run_raw(&snooping, &synced).violation, None);
}

/// Protects the fuzzing contract: an exhausted input decodes as variant 0, which must be a
/// harmless load, so a run of them finds nothing on any machine.
#[test]
fn all_zero_input_decodes_to_harmless_loads() {
    let op = RawOp::arbitrary(&mut Unstructured::new(&[])).unwrap();
    assert_eq!(
        op,
        RawOp::Load {
            cpu: 0,
            alias: 0,
            off: 0
        }
    );
    for (name, cfg) in aliasing_machines()
        .into_iter()
        .chain([("coherent", coherent())])
    {
        assert_eq!(run_raw(&cfg, &[op; 64]).violation, None, "{name}");
    }
}

/// Protects the readability of reports: the text names the reader's alias, the line the value
/// came from, where the newer value is, and the writer's alias.
#[test]
fn violation_text_names_both_aliases() {
    let cfg = v6();
    let (a, b, _, _) = incongruent_pair(&cfg);
    let v = violation(
        &cfg,
        &[
            RawOp::Store {
                cpu: 0,
                alias: a,
                off: OFF,
            },
            RawOp::Load {
                cpu: 0,
                alias: b,
                off: OFF,
            },
        ],
    );
    insta::assert_snapshot!(v.to_string(), @"stale-load of pa 0x5 through 0x4045 (vmap) on CPU0 at op 1: expected #1026, observed #6 from CPU0 D-cache set 8 way 0 (clean, filled through 0x4040); intended value in CPU0 D-cache set 0 way 0 (dirty, filled through 0x1000); last written by op 0 through 0x1005 (linear)");
}

fn raw_ops() -> impl bolero::generator::ValueGenerator<Output = Vec<RawOp>> {
    bolero::produce::<Vec<RawOp>>().with().len(0usize..64)
}

/// The law that makes every report a real bug: on fully coherent hardware no sequence of raw
/// ops, maintenance or not, produces a violation.
#[test]
fn coherent_hardware_never_reports_a_violation() {
    let cfg = coherent();
    bolero::check!()
        .with_generator(raw_ops())
        .with_iterations(2000)
        .for_each(|ops: &Vec<RawOp>| {
            let r = run_raw(&cfg, ops);
            assert!(r.violation.is_none(), "{}", r.violation.unwrap());
        });
}

/// Raw runs are pure functions of the machine and the ops: the same input twice gives the
/// identical report, on an aliasing machine (where most inputs report something) and on a
/// coherent one.
#[test]
fn raw_runs_are_deterministic() {
    let machines = [v6(), small(geo::SMALL_VIVT, geo::SMALL_PAGE), coherent()];
    bolero::check!()
        .with_generator(raw_ops())
        .with_iterations(1000)
        .for_each(|ops: &Vec<RawOp>| {
            for cfg in &machines {
                assert_eq!(run_raw(cfg, ops), run_raw(cfg, ops));
            }
        });
}

/// A violation found at op `i` depends only on ops `0..=i`: the run stops there, so the prefix
/// reproduces it exactly (what a minimizer relies on).
#[test]
fn a_violation_reproduces_from_the_prefix_ending_at_its_op() {
    let cfg = v6();
    bolero::check!()
        .with_generator(raw_ops())
        .with_iterations(1000)
        .for_each(|ops: &Vec<RawOp>| {
            let r = run_raw(&cfg, ops);
            if let Some(i) = r.violation.as_ref().and_then(|v| v.op) {
                assert_eq!(run_raw(&cfg, &ops[..=i]), r);
            }
        });
}
