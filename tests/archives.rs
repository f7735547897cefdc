//! Archives of captures read in place: `.tar` and `.tgz` made by tar,
//! `.tar.zst` (tar compressed with the zstd crate), `.zip` made by Python's
//! zipfile. Members are reported as `archive:path` with the rows a direct
//! run gives; an archive without captures is an error; a damaged archive
//! says so after the members before the damage.

mod common;
use common::{csv_rows, run, stdout};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tool(name: &str, arg: &str) -> bool {
    let ok = Command::new(name).arg(arg).output().is_ok();
    if !ok {
        eprintln!("SKIPPED: {name} is not installed; archives made by it are not tested");
    }
    ok
}

/// A tree of three captures (one gzip-compressed) and a text file.
fn tree(base: &Path) -> PathBuf {
    let t = base.join("tree");
    std::fs::create_dir_all(t.join("site3")).unwrap();
    std::fs::copy("samples/refused.pcap", t.join("site3/edge.pcap")).unwrap();
    std::fs::copy(
        "samples/server-denied.pcap",
        t.join("site3/core.pcapng.pcap"),
    )
    .unwrap();
    let healthy = std::fs::read("samples/healthy.pcap").unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &healthy).unwrap();
    std::fs::write(t.join("site3/h.pcap.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(t.join("readme.txt"), "not a capture\n").unwrap();
    t
}

/// Attempt rows by member (capture name without the archive), sorted.
fn rows(args: &[&str]) -> (Vec<Vec<String>>, std::process::Output) {
    let mut a = vec!["analyze", "-q", "--format", "csv", "--view", "attempts"];
    a.extend_from_slice(args);
    let out = run(&a);
    let mut r = csv_rows(&stdout(&out));
    r.remove(0);
    r.sort();
    (r, out)
}

fn direct() -> Vec<Vec<String>> {
    let (mut r, _) = rows(&[
        "samples/refused.pcap",
        "samples/server-denied.pcap",
        "samples/healthy.pcap",
    ]);
    for row in &mut r {
        row[0].clear();
    }
    r.sort();
    r
}

#[test]
fn every_kind_of_archive_gives_its_members_rows() {
    let base = std::env::temp_dir().join(format!("rdpsift-archives-{}", std::process::id()));
    let t = tree(&base);
    let mut made: Vec<PathBuf> = Vec::new();
    if tool("tar", "--version") {
        for (name, flag) in [("c.tar", "-cf"), ("c.tgz", "-czf")] {
            let a = base.join(name);
            let s = Command::new("tar")
                .arg(flag)
                .arg(&a)
                .args(["-C", t.to_str().unwrap(), "."])
                .status()
                .unwrap();
            assert!(s.success());
            made.push(a);
        }
        // .tar.zst: the tar compressed with zstd.
        let tar = std::fs::read(base.join("c.tar")).unwrap();
        let zst = zstd::encode_all(tar.as_slice(), 3).unwrap();
        std::fs::write(base.join("c.tar.zst"), zst).unwrap();
        made.push(base.join("c.tar.zst"));
    }
    if tool("python3", "--version") {
        let a = base.join("c.zip");
        let s = Command::new("python3")
            .args(["-m", "zipfile", "-c"])
            .arg(&a)
            .arg(t.join("site3"))
            .arg(t.join("readme.txt"))
            .status()
            .unwrap();
        assert!(s.success());
        made.push(a);
    }
    let want = direct();
    assert_eq!(want.len(), 3);
    for a in &made {
        let name = a.to_str().unwrap();
        let (mut got, out) = rows(&[name]);
        assert_eq!(out.status.code(), Some(1), "{name}: failures are found");
        let mut members: Vec<String> = got.iter().map(|r| r[0].clone()).collect();
        members.sort();
        assert_eq!(
            members,
            [
                format!("{name}:site3/core.pcapng.pcap"),
                format!("{name}:site3/edge.pcap"),
                format!("{name}:site3/h.pcap.gz"),
            ],
            "{name}"
        );
        for row in &mut got {
            row[0].clear();
        }
        got.sort();
        assert_eq!(got, want, "{name}");
        // The text file is counted as skipped, not silently dropped.
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let o = run(&["analyze", "--format", "csv", name]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("1 file skipped (not captures)"),
            "{name}: {e} {err}"
        );
    }
    // A folder that holds only archives: their captures, not "0 captures".
    if !made.is_empty() {
        let dir = base.join("only-archives");
        std::fs::create_dir_all(&dir).unwrap();
        for a in &made {
            std::fs::copy(a, dir.join(a.file_name().unwrap())).unwrap();
        }
        let (got, out) = rows(&[dir.to_str().unwrap()]);
        assert_eq!(got.len(), 3 * made.len());
        assert_eq!(out.status.code(), Some(1));
    }
    std::fs::remove_dir_all(base).ok();
}

#[test]
fn an_archive_without_captures_or_damaged_is_an_error() {
    if !tool("tar", "--version") {
        return;
    }
    let base = std::env::temp_dir().join(format!("rdpsift-archives-bad-{}", std::process::id()));
    let t = tree(&base);
    let none = base.join("none.tar");
    let s = Command::new("tar")
        .arg("-cf")
        .arg(&none)
        .args(["-C", t.to_str().unwrap(), "readme.txt"])
        .status()
        .unwrap();
    assert!(s.success());
    let o = run(&["analyze", "--format", "csv", none.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains(
            "no captures in this archive (1 member that is not a capture, the first readme.txt)"
        ),
        "{e}"
    );
    // Cut in the middle of its last member: the members before it are
    // read, then the damage is said.
    let full = base.join("c.tar");
    let s = Command::new("tar")
        .arg("-cf")
        .arg(&full)
        .args([
            "-C",
            t.to_str().unwrap(),
            "site3/edge.pcap",
            "site3/core.pcapng.pcap",
        ])
        .status()
        .unwrap();
    assert!(s.success());
    let bytes = std::fs::read(&full).unwrap();
    let cut = base.join("cut.tar");
    std::fs::write(&cut, &bytes[..512 * 3 + 1000]).unwrap();
    let (got, out) = rows(&[cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        got.iter().any(|r| r[0].ends_with(":site3/edge.pcap")),
        "{got:?}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    std::fs::remove_dir_all(base).ok();
}
