use super::{from_fdt, parse, BootOptions, SelfTest};

#[test]
fn an_empty_or_foreign_command_line_asks_nothing() {
    assert_eq!(parse(""), BootOptions::default());
    assert_eq!(
        parse("console=ttyAMA0 root=/dev/vda  quiet"),
        BootOptions::default()
    );
}

#[test]
fn the_selftest_option_is_read_among_other_words() {
    let o = parse("console=ttyAMA0 bulkhead.selftest=el2-stack-overflow quiet");
    assert_eq!(o.selftest, Some(SelfTest::El2StackOverflow));
    assert_eq!(o.not_understood, None);
}

#[test]
fn words_it_does_not_understand_are_reported_not_obeyed() {
    let o = parse("bulkhead.selftest=reboot-loop bulkhead.colour=blue");
    assert_eq!(o.selftest, None);
    assert_eq!(o.not_understood, Some("bulkhead.selftest=reboot-loop"));
    let o = parse("bulkhead.selftest bulkhead.selftest=el2-stack-overflow");
    assert_eq!(o.selftest, Some(SelfTest::El2StackOverflow));
    assert_eq!(o.not_understood, Some("bulkhead.selftest"));
    // The prefix must match exactly.
    assert_eq!(
        parse("bulkheadX.selftest=el2-stack-overflow"),
        BootOptions::default()
    );
}

#[test]
fn the_command_line_comes_from_chosen_bootargs() {
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    let chosen = w.begin_node("chosen").unwrap();
    w.property_string("bootargs", "bulkhead.selftest=el2-stack-overflow")
        .unwrap();
    w.end_node(chosen).unwrap();
    w.end_node(root).unwrap();
    let blob = w.finish().unwrap();
    let fdt = fdt::Fdt::new(&blob).unwrap();
    assert_eq!(from_fdt(&fdt).selftest, Some(SelfTest::El2StackOverflow));

    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.end_node(root).unwrap();
    let blob = w.finish().unwrap();
    assert_eq!(
        from_fdt(&fdt::Fdt::new(&blob).unwrap()),
        BootOptions::default()
    );
}
