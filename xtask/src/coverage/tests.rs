//! Tests of `cargo xtask coverage`: lcov parsing, test-code ranges, module files, the report.

use super::*;

#[test]
fn ranges_join_consecutive_lines() {
    assert_eq!(ranges(&[1, 2, 3, 7, 9, 10]), "1-3, 7, 9-10");
    assert_eq!(ranges(&[]), "");
}

#[test]
fn lcov_records_of_measured_files_are_counted() {
    let root = project_root();
    let text = format!(
        "SF:{0}/shared/app/src/orders.rs\nDA:1,3\nDA:2,0\nDA:3,0\nend_of_record\n\
             SF:{0}/testing/in-memory/src/lib.rs\nDA:1,0\nend_of_record\n",
        root.display()
    );
    let hits = parse_lcov(&text, &root);
    assert_eq!(hits.keys().collect::<Vec<_>>(), ["shared/app/src/orders.rs"]);
    assert_eq!(hits["shared/app/src/orders.rs"].values().copied().collect::<Vec<_>>(), [3, 0, 0]);
}

#[test]
fn test_modules_are_found_inline_and_out_of_line() {
    let source = "fn code() {}\n\n#[cfg(test)]\nmod properties;\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    \
                      fn t() {\n        let _ = format!(\"{}\", 1);\n    }\n}\n\n#[cfg(not(test))]\nmod real {}\n";
    let (blocks, modules) = test_code(source);
    assert_eq!(blocks, [6..=12]);
    assert_eq!(modules, ["properties"]);
    assert_eq!(module_files("shared/domain/src/lib.rs", "properties")[0], "shared/domain/src/properties.rs");
    assert_eq!(module_files("shared/framework/src/http/mod.rs", "x")[1], "shared/framework/src/http/x/mod.rs");
    assert_eq!(module_files("shared/framework/src/batch.rs", "x")[0], "shared/framework/src/batch/x.rs");
}
