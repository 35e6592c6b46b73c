// Prints the parity table for dyn_metrics.expfmt.format_value: a `#` header
// line, then one TSV line `<16 hex digits of the f64 bits>\t<format!("{}", v)>`
// per value below.
//
// Values are given as bit patterns so every one of them is exact, including
// -0, NaN payloads, subnormals, f64::MAX and f64::MIN_POSITIVE. Rows are
// unique by bit pattern (checked at run time); the tests use the bits as ids.
//
// Regenerate tests/data/rust_f64_display.tsv from the repository root, with
// std only (no Cargo), building outside the repository:
//
//     T="$(mktemp -d)"
//     rustc -o "$T/rust_float_table" tools/rust_float_table.rs
//     RUSTC_VERSION="$(rustc --version)" "$T/rust_float_table" > tests/data/rust_f64_display.tsv
//
// RUSTC_VERSION goes into the header line so the table records which Rust
// standard library produced it.

const VALUES: &[(u64, &str)] = &[
    // Integers: the `.0` Rust drops, the 2^53 edge, and values whose shortest
    // digits Python writes with an exponent (>= 1e16).
    (0x0000000000000000, "0"),
    (0x8000000000000000, "-0"),
    (0x3ff0000000000000, "1"),
    (0xbff0000000000000, "-1"),
    (0x40e86a0000000000, "50000"),
    (0xc0e86a0000000000, "-50000"),
    (0x433fffffffffffff, "2^53-1"),
    (0x4340000000000000, "2^53"),
    (0xc340000000000000, "-2^53"),
    (0x4340000000000001, "2^53+2"),
    (0x430c6bf526340000, "1e15"),
    (0xc30c6bf526340000, "-1e15"),
    (0x4341c37937e07fff, "1e16 next down (9999999999999998)"),
    (0x4341c37937e08000, "1e16"),
    (0x4341c37937e08001, "1e16 next up (1.0000000000000002e16)"),
    (0x4376345785d8a000, "1e17"),
    (0x437b6951ef585a00, "1.2345e17"),
    (0x444b1ae4d6e2ef50, "1e21"),
    (0xc44b1ae4d6e2ef50, "-1e21"),
    (0x4480f0cf064dd592, "1e22"),
    (0x44b52d02c7e14af6, "1e23 (really 9.999999999999999e22)"),
    (0x44b52d02c7e14af7, "1e23 next up"),
    (0x441ac53a7e04bcda, "123456789012345680000"),
    (0x43e0000000000000, "2^63"),
    (0x43f0000000000000, "u64::MAX as f64 (2^64)"),
    (0xc3e0000000000000, "i64::MIN as f64"),
    // Decimals: shortest round-trip digits, small exponents expanded.
    (0x3fb999999999999a, "0.1"),
    (0x3fc999999999999a, "0.2"),
    (0x3fd3333333333333, "0.3"),
    (0x3fd3333333333334, "0.1+0.2"),
    (0x3ff8000000000000, "1.5"),
    (0x401e000000000000, "7.5"),
    (0xc01e000000000000, "-7.5"),
    (0x405edd3c07ee0b0b, "123.456789"),
    (0x3fd5555555555555, "1/3"),
    (0x3fe5555555555555, "2/3"),
    (0xbfd5555555555555, "-1/3"),
    (0x3f50624dd2f1a9fc, "0.001"),
    (0x3f1a36e2eb1c432d, "0.0001"),
    (0x3f201f31f46ed246, "0.000123"),
    (0x3ee4f8b588e368f1, "1e-5"),
    (0x3eb0c6f7a0b5ed8d, "1e-6"),
    (0x3e7ad7f29abcaf48, "1e-7"),
    (0xbe7ad7f29abcaf48, "-1e-7"),
    (0x3e8421f5f40d8376, "1.5e-7"),
    (0x3ddb7cdfd9d7bdbb, "1e-10"),
    (0xbdf12e0be826d695, "-2.5e-10"),
    (0x4011666666666666, "4.35"),
    (0x4059080000000000, "100.125"),
    (0x40934a456d5cfaad, "1234.5678"),
    (0xc0934a456d5cfaad, "-1234.5678"),
    (0x40c81cd6e63a5c1c, "12345.678901"),
    (0x41d954fc4007df3b, "1700000000.123"),
    (0x4320000000000001, "2^51+0.5"),
    (0x432fffffffffffff, "2^52-0.5"),
    // Exact ties: the value is exactly halfway between two shortest digit
    // strings. Rust takes the one farther from zero; Python's repr takes the
    // even one, so the two differ when the even one is nearer zero.
    (0x41c9ff26323e8000, "872303716.48828125 (repr 872303716.4882812)"),
    (0x42d22ae4aeab97a8, "79901738315358.625 (repr 79901738315358.62)"),
    (0xc318ab069c92298d, "-1735861081508451.25 (repr -1735861081508451.2)"),
    (0x426a0a6bbd391f00, "894751861192.96875 (repr 894751861192.9688, same as Rust)"),
    // Extremes: 309-digit integers and 300+ leading zeros.
    (0x7fefffffffffffff, "f64::MAX (1.7976931348623157e308)"),
    (0xffefffffffffffff, "f64::MIN"),
    (0x7fe1ccf385ebc8a0, "1e308"),
    (0x7e37e43c8800759c, "1e300"),
    (0x0010000000000000, "f64::MIN_POSITIVE (2.2250738585072014e-308)"),
    (0x8010000000000000, "-f64::MIN_POSITIVE"),
    (0x0010000000000001, "f64::MIN_POSITIVE next up"),
    (0x000fffffffffffff, "f64::MIN_POSITIVE next down (largest subnormal)"),
    (0x0000000000000001, "smallest subnormal 5e-324"),
    (0x8000000000000001, "-5e-324"),
    (0x01a56e1fc2f8f359, "1e-300"),
    (0x81a56e1fc2f8f359, "-1e-300"),
    // Specials: Rust prints "NaN" whatever the sign bit or payload.
    (0x7ff0000000000000, "inf"),
    (0xfff0000000000000, "-inf"),
    (0x7ff8000000000000, "NaN"),
    (0xfff8000000000000, "NaN with sign bit set"),
    (0x7ff8000000000001, "NaN with payload"),
    (0x7fffffffffffffff, "NaN, all payload bits"),
    // Typical metric values: default histogram bounds, durations in seconds.
    (0x3f747ae147ae147b, "0.005"),
    (0x3f847ae147ae147b, "0.01"),
    (0x3f9999999999999a, "0.025"),
    (0xbf9999999999999a, "-0.025"),
    (0x3fa999999999999a, "0.05"),
    (0x3fd0000000000000, "0.25"),
    (0x3fe0000000000000, "0.5"),
    (0x4004000000000000, "2.5"),
    (0x4014000000000000, "5"),
    (0x4024000000000000, "10"),
    (0x404e000000000000, "60"),
    (0x405e000000000000, "120"),
    (0x4072c00000000000, "300"),
    (0x4082c00000000000, "600"),
    (0xc082c00000000000, "-600"),
];

fn main() {
    let version = std::env::var("RUSTC_VERSION")
        .expect("set RUSTC_VERSION to the output of `rustc --version`");
    println!(
        "# bits<TAB>format!(\"{{}}\", f64::from_bits(bits)), produced by tools/rust_float_table.rs \
         built with {}: `T=\"$(mktemp -d)\"; rustc -o \"$T/rust_float_table\" tools/rust_float_table.rs; \
         RUSTC_VERSION=\"$(rustc --version)\" \"$T/rust_float_table\" > tests/data/rust_f64_display.tsv`",
        version
    );
    let mut seen = std::collections::HashSet::new();
    for &(bits, _what) in VALUES {
        assert!(seen.insert(bits), "duplicate bit pattern {:016x}", bits);
        println!("{:016x}\t{}", bits, f64::from_bits(bits));
    }
}
