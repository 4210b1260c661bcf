//! Device-tree addresses as the CPU sees them. A node's `reg` is written in its parent bus's
//! address space; every bus between the node and the root maps its children's space into
//! its own parent's with `ranges` (empty: identity; absent: not mapped at all). Boards put
//! their devices under such buses (the ZynqMP's `/axi` with identity `ranges`, a
//! Raspberry Pi's `/soc` with a real translation), so a `reg` is only an address after it
//! went through every bus above it.
//!
//! The `fdt` crate hands out nodes without their parents, so nodes are found here by walking
//! down from the root, keeping the chain of buses ([`Located`]). Every malformed or
//! untranslatable address is `None`: the device tree is the boot loader's, and a bad one must
//! never panic the microvisor.

use fdt::node::FdtNode;
use fdt::Fdt;
pub use protocol::dt::{read_cells, translate_ranges};

/// Deepest node found (root = depth 0); deeper ones are not visited.
pub const MAX_DEPTH: usize = 8;

/// `#address-cells` when a bus does not say (the devicetree specification's default).
const DEFAULT_ADDRESS_CELLS: usize = 2;
/// `#size-cells` when a bus does not say.
const DEFAULT_SIZE_CELLS: usize = 1;

/// A node and the buses above it, root first.
#[derive(Clone, Copy)]
pub struct Located<'b, 'a> {
    node: FdtNode<'b, 'a>,
    /// `buses[0]` is the root, `buses[depth - 1]` the node's parent.
    buses: [Option<FdtNode<'b, 'a>>; MAX_DEPTH],
    depth: usize,
}

impl<'b, 'a> Located<'b, 'a> {
    /// The node itself.
    pub fn node(&self) -> FdtNode<'b, 'a> {
        self.node
    }

    /// The bus the node sits on (`None` for the root).
    fn parent(&self) -> Option<FdtNode<'b, 'a>> {
        self.buses[self.depth.checked_sub(1)?]
    }

    /// The `index`th `reg` entry, `(CPU physical address, size)`, translated through every
    /// bus above the node. `None` if there is no such entry, a cell count is unsupported
    /// (more than 2) or some bus does not map the address.
    pub fn reg(&self, index: usize) -> Option<(u64, u64)> {
        let parent = self.parent()?;
        let (ac, sc) = (address_cells(parent), size_cells(parent));
        let entry = (ac + sc) * 4;
        let reg = self.node.property("reg")?.value;
        let at = index.checked_mul(entry)?;
        let bytes = reg.get(at..at.checked_add(entry)?)?;
        let addr = read_cells(&bytes[..ac * 4], ac)?;
        let size = read_cells(&bytes[ac * 4..], sc)?;
        Some((self.translate(addr)?, size))
    }

    /// How many `reg` entries the node has (whole entries only).
    pub fn reg_count(&self) -> usize {
        let Some(parent) = self.parent() else {
            return 0;
        };
        let entry = (address_cells(parent) + size_cells(parent)) * 4;
        match self.node.property("reg") {
            Some(p) if entry > 0 => p.value.len() / entry,
            _ => 0,
        }
    }

    /// `addr`, in the node's parent's address space, as a CPU physical address.
    pub fn translate(&self, mut addr: u64) -> Option<u64> {
        // From the node's parent up to (not including) the root, whose space is the CPU's.
        for i in (1..self.depth).rev() {
            let (bus, above) = (self.buses[i]?, self.buses[i - 1]?);
            let ranges = bus.property("ranges")?.value;
            addr = translate_ranges(
                ranges,
                address_cells(bus),
                address_cells(above),
                size_cells(bus),
                addr,
            )?;
        }
        Some(addr)
    }
}

/// A node's `#address-cells` for its children (default 2; an unreadable value is 3, which
/// every reader here refuses).
pub fn address_cells(node: FdtNode<'_, '_>) -> usize {
    cell_count(node, "#address-cells").unwrap_or(DEFAULT_ADDRESS_CELLS)
}

/// A node's `#size-cells` for its children (default 1).
pub fn size_cells(node: FdtNode<'_, '_>) -> usize {
    cell_count(node, "#size-cells").unwrap_or(DEFAULT_SIZE_CELLS)
}

fn cell_count(node: FdtNode<'_, '_>, name: &str) -> Option<usize> {
    let p = node.property(name)?;
    let b: [u8; 4] = p.value.get(..4)?.try_into().ok()?;
    // Anything unreadable or absurd counts as "too many", so no address is read with it.
    Some((u32::from_be_bytes(b) as usize).min(3))
}

/// The node at `path` (`/axi/serial@ff000000`; a component without a unit address matches
/// a node whose name before `@` is that), with its buses.
pub fn find_path<'b, 'a>(fdt: &'b Fdt<'a>, path: &str) -> Option<Located<'b, 'a>> {
    let mut at = Located {
        node: fdt.find_node("/")?,
        buses: [None; MAX_DEPTH],
        depth: 0,
    };
    for component in path.split('/').filter(|c| !c.is_empty()) {
        let child = at.node.children().find(|c| {
            c.name == component
                || (!component.contains('@') && c.name.split('@').next() == Some(component))
        })?;
        if at.depth == MAX_DEPTH {
            return None;
        }
        at.buses[at.depth] = Some(at.node);
        at.depth += 1;
        at.node = child;
    }
    Some(at)
}

/// The first node, depth first, compatible with one of `with`, with its buses.
pub fn find_compatible<'b, 'a>(fdt: &'b Fdt<'a>, with: &[&str]) -> Option<Located<'b, 'a>> {
    let root = Located {
        node: fdt.find_node("/")?,
        buses: [None; MAX_DEPTH],
        depth: 0,
    };
    search(root, &|n: FdtNode<'_, '_>| {
        n.compatible()
            .is_some_and(|c| c.all().any(|s| with.contains(&s)))
    })
}

fn search<'b, 'a>(
    at: Located<'b, 'a>,
    want: &dyn Fn(FdtNode<'b, 'a>) -> bool,
) -> Option<Located<'b, 'a>> {
    if want(at.node) {
        return Some(at);
    }
    if at.depth == MAX_DEPTH {
        return None;
    }
    let mut buses = at.buses;
    buses[at.depth] = Some(at.node);
    at.node.children().find_map(|child| {
        search(
            Located {
                node: child,
                buses,
                depth: at.depth + 1,
            },
            want,
        )
    })
}

/// Calls `f` on every node below the root, depth first, with its buses (nodes deeper than
/// [`MAX_DEPTH`] are not visited).
pub fn for_each<'b, 'a>(fdt: &'b Fdt<'a>, f: &mut dyn FnMut(Located<'b, 'a>)) {
    let Some(root) = fdt.find_node("/") else {
        return;
    };
    let at = Located {
        node: root,
        buses: [None; MAX_DEPTH],
        depth: 0,
    };
    visit_children(at, f);
}

fn visit_children<'b, 'a>(at: Located<'b, 'a>, f: &mut dyn FnMut(Located<'b, 'a>)) {
    if at.depth == MAX_DEPTH {
        return;
    }
    let mut buses = at.buses;
    buses[at.depth] = Some(at.node);
    for child in at.node.children() {
        let located = Located {
            node: child,
            buses,
            depth: at.depth + 1,
        };
        f(located);
        visit_children(located, f);
    }
}

/// The node `/chosen/stdout-path` names: `:options` (`serial0:115200n8`) dropped, an alias
/// (a name not starting with `/`) resolved through `/aliases`.
pub fn stdout_node<'b, 'a>(fdt: &'b Fdt<'a>) -> Option<Located<'b, 'a>> {
    chosen_node(fdt, "stdout-path")
}

/// The node `/chosen`'s string property `prop` names, read as `stdout-path` is (see
/// [`stdout_node`]).
pub fn chosen_node<'b, 'a>(fdt: &'b Fdt<'a>, prop: &str) -> Option<Located<'b, 'a>> {
    let chosen = fdt.find_node("/chosen")?;
    let path = prop_str(chosen.property(prop)?.value)?;
    let path = path.split(':').next()?;
    if path.starts_with('/') {
        return find_path(fdt, path);
    }
    let aliases = fdt.find_node("/aliases")?;
    let full = prop_str(aliases.property(path)?.value)?;
    // An alias must name a full path; one that names another alias is not followed.
    full.starts_with('/').then(|| find_path(fdt, full))?
}

/// A string property's text (without its NUL); `None` if empty or not UTF-8.
fn prop_str(value: &[u8]) -> Option<&str> {
    let text = value.split(|&b| b == 0).next()?;
    let text = core::str::from_utf8(text).ok()?;
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
#[path = "dt_addr_tests.rs"]
mod tests;
