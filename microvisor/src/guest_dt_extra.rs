//! The device-tree fragment of a guest given host devices (xl `device_tree`, issue 16):
//! the tools merge the user's partial tree into a small tree whose root's children (Xen's
//! `/passthrough` bus and its devices) are already in the guest's terms (its GIC phandle,
//! its `#address-cells`/`#size-cells`). Here those children are copied, node by node and
//! property by property, into the root of the guest's generated tree.

use vm_fdt::FdtWriter;

/// Deepest node nesting copied (a bus, its devices, their sub-nodes: far less in practice);
/// a deeper fragment is refused rather than walked on EL2's stack.
pub const MAX_DEPTH: usize = 8;

/// Why a fragment cannot be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragmentError {
    /// Not a flattened device tree.
    Malformed,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A top-level node has the name of one the generated tree has.
    Clash,
    /// The writer refused a node or property.
    Writer,
}

/// Checks that `fragment` can be spliced: it parses and is no deeper than [`MAX_DEPTH`].
pub fn check(fragment: &[u8]) -> Result<(), FragmentError> {
    let fdt = fdt::Fdt::new(fragment).map_err(|_| FragmentError::Malformed)?;
    let root = fdt.find_node("/").ok_or(FragmentError::Malformed)?;
    fn depth(n: fdt::node::FdtNode<'_, '_>, d: usize) -> Result<(), FragmentError> {
        if d > MAX_DEPTH {
            return Err(FragmentError::TooDeep);
        }
        n.children().try_for_each(|c| depth(c, d + 1))
    }
    depth(root, 0)
}

/// The part of a node name before its unit address.
fn base_name(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

/// Writes the children of `fragment`'s root, with all their properties and sub-nodes, at
/// the writer's current position (inside the guest's root node). `taken` are the names of
/// the nodes the generated tree has there: a fragment node of the same name (unit address
/// aside) is refused, it would be a second `memory`, `cpus` or `hypervisor`.
pub fn splice(w: &mut FdtWriter, fragment: &[u8], taken: &[&str]) -> Result<(), FragmentError> {
    check(fragment)?;
    let fdt = fdt::Fdt::new(fragment).map_err(|_| FragmentError::Malformed)?;
    let root = fdt.find_node("/").ok_or(FragmentError::Malformed)?;
    if root
        .children()
        .any(|c| taken.iter().any(|t| base_name(t) == base_name(c.name)))
    {
        return Err(FragmentError::Clash);
    }
    fn copy(w: &mut FdtWriter, n: fdt::node::FdtNode<'_, '_>) -> Result<(), vm_fdt::Error> {
        let node = w.begin_node(n.name)?;
        for p in n.properties() {
            w.property(p.name, p.value)?;
        }
        for c in n.children() {
            copy(w, c)?;
        }
        w.end_node(node)
    }
    let copied = root.children().try_for_each(|c| copy(w, c));
    copied.map_err(|_| FragmentError::Writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(depth: usize) -> std::vec::Vec<u8> {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        let bus = w.begin_node("passthrough").unwrap();
        w.property_string("compatible", "simple-bus").unwrap();
        w.property_null("ranges").unwrap();
        let rtc = w.begin_node("rtc@9010000").unwrap();
        w.property_array_u64("reg", &[0x901_0000, 0x1000]).unwrap();
        w.property_u32("interrupt-parent", 65000).unwrap();
        let mut open = std::vec::Vec::new();
        for i in 0..depth {
            open.push(w.begin_node(&format!("n{i}")).unwrap());
        }
        for n in open.into_iter().rev() {
            w.end_node(n).unwrap();
        }
        w.end_node(rtc).unwrap();
        w.end_node(bus).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn the_roots_children_are_copied_whole() {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        splice(&mut w, &fragment(1), &["hypervisor"]).unwrap();
        w.end_node(root).unwrap();
        let blob = w.finish().unwrap();
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let rtc = fdt.find_node("/passthrough/rtc@9010000").unwrap();
        assert_eq!(
            rtc.property("interrupt-parent").and_then(|p| p.as_usize()),
            Some(65000)
        );
        let reg = rtc.property("reg").unwrap().value;
        assert_eq!(reg, [0u8, 0, 0, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0]);
        assert!(fdt.find_node("/passthrough/rtc@9010000/n0").is_some());
        let bus = fdt.find_node("/passthrough").unwrap();
        assert!(bus.property("ranges").is_some());
        // The fragment's root properties are the guest's own business, not copied.
        assert_eq!(fdt.find_node("/").unwrap().properties().count(), 1);
    }

    #[test]
    fn garbage_and_deep_fragments_are_refused() {
        let mut w = FdtWriter::new().unwrap();
        assert_eq!(
            splice(&mut w, &[0u8; 40], &[]),
            Err(FragmentError::Malformed)
        );
        assert_eq!(
            splice(&mut w, &fragment(1), &["passthrough@0"]),
            Err(FragmentError::Clash)
        );
        assert_eq!(check(&fragment(MAX_DEPTH)), Err(FragmentError::TooDeep));
        assert_eq!(check(&fragment(MAX_DEPTH - 3)), Ok(()));
    }
}
