//! The node operations (READ, WRITE, MKDIR, RM, DIRECTORY, DIRECTORY_PART, GET/SET_PERMS),
//! written once against a [`View`] so they behave the same inside and outside transactions.
//!
//! Access follows xenstored: a node the caller may not use is `EACCES`; a missing node is
//! `ENOENT` only if the nearest existing ancestor grants the caller some of the rights it
//! asked for, else `EACCES` (nothing is revealed about what it cannot see). Every check and
//! quota is evaluated before the first change, so a refused operation changes nothing.

use super::error::XsError;
use super::path::{basename, join, parent, Resolver};
use super::perms::{Perm, Rights, Who, NEED_OWNER, NEED_READ, NEED_WRITE};
use super::quota::{self, Quotas};
use super::tree::{charge, Node};
use super::view::View;
use super::watch::Change;
use super::wire;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use protocol::xen::ring::XENSTORE_PAYLOAD_MAX;

/// Everything one operation needs.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The tree, possibly through a transaction.
    pub view: View<'a>,
    /// The caller.
    pub who: Who,
    /// Resolves the caller's paths.
    pub resolver: Resolver<'a>,
    /// Limits for unprivileged callers.
    pub quotas: &'a Quotas,
    /// Heap bytes the operation may add to the committed tree before the caller's memory
    /// quota is exceeded (`usize::MAX` in a transaction, whose limits charge its copies,
    /// and for dom0).
    pub budget: usize,
    /// Changes made, to be announced to watchers (now, or when the transaction commits).
    pub changes: Vec<Change>,
}

impl Ctx<'_> {
    fn path(&self, raw: &[u8], special: bool) -> Result<String, XsError> {
        Ok(self.resolver.resolve(raw, special)?.0)
    }

    /// The node at `path` if the caller holds `need` on it (a copy).
    fn lookup(&mut self, path: &str, need: Rights) -> Result<Node, XsError> {
        let err = match self.view.get(path)? {
            Some(n) if self.who.rights(&n.perms).covers(need) => return Ok(n.clone()),
            Some(_) => XsError::AccessDenied,
            None => XsError::NotFound,
        };
        let mut p = path;
        loop {
            p = parent(p);
            if let Some(n) = self.view.get(p)? {
                let hint = self.who.rights(&n.perms).intersects(need);
                return Err(if hint { err } else { XsError::AccessDenied });
            }
            if p == "/" {
                return Err(XsError::Io); // the root is never removed
            }
        }
    }

    /// Checks, before anything changes, that replacing the nodes `old` by `new` fits the
    /// caller's memory budget (`ENOMEM`, as xenstored's memory quota).
    fn afford(&self, old: usize, new: usize) -> Result<(), XsError> {
        if new.saturating_sub(old) > self.budget {
            return Err(XsError::NoMemory);
        }
        Ok(())
    }

    fn check_size(&self, node: &Node) -> Result<(), XsError> {
        if !self.who.privileged && quota::exceeds(node.size(), self.quotas.node_size) {
            return Err(XsError::NoSpace);
        }
        Ok(())
    }

    fn perms_at(&mut self, path: &str) -> Result<Vec<Perm>, XsError> {
        Ok(self
            .view
            .get(path)?
            .map(|n| n.perms.clone())
            .unwrap_or_default())
    }

    /// Records that `path` changed (`old`: its permissions before a SET_PERMS).
    fn announce(&mut self, path: String, old: Option<Vec<Perm>>) -> Result<(), XsError> {
        let mut readable = vec![self.perms_at(&path)?, self.perms_at(parent(&path))?];
        readable.extend(old);
        self.changes.push(Change::Modified { path, readable });
        Ok(())
    }

    /// Creates `path` with `value`, and any missing ancestors with empty values. New nodes
    /// inherit the nearest existing ancestor's permissions; an unprivileged creator owns them.
    fn create(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        let mut missing = vec![path.to_string()];
        let mut at = parent(path);
        let mut top = loop {
            match self.view.get(at)? {
                Some(n) => break n.clone(),
                None if at == "/" => return Err(XsError::Io),
                None => missing.push(at.to_string()),
            }
            at = parent(at);
        };
        let top_path = at.to_string();
        let owned = self.view.owned(self.who.domid);
        if !self.who.privileged
            && quota::exceeds(owned as usize + missing.len(), self.quotas.nodes as usize)
        {
            return Err(XsError::NoSpace);
        }
        let mut perms = top.perms.clone();
        if let (false, Some(owner)) = (self.who.privileged, perms.first_mut()) {
            owner.domid = self.who.domid;
        }
        // `missing` runs from `path` up; build top-down, each node naming the one below.
        top.children
            .push(basename(&missing[missing.len() - 1]).into());
        self.check_size(&top)?;
        let mut nodes = Vec::with_capacity(missing.len());
        let mut cost = charge(&top_path, Some(&top));
        for (i, p) in missing.iter().enumerate().rev() {
            let mut n = Node::new(perms.clone());
            match i.checked_sub(1) {
                Some(below) => n.children.push(basename(&missing[below]).into()),
                None => n.value = value.to_vec(),
            }
            self.check_size(&n)?;
            cost += charge(p, Some(&n));
            nodes.push((p, n));
        }
        let before = self
            .view
            .get(&top_path)?
            .map(|n| charge(&top_path, Some(n)));
        self.afford(before.unwrap_or(0), cost)?;
        self.view.set(&top_path, Some(top))?;
        for (p, n) in nodes {
            self.view.set(p, Some(n))?;
        }
        Ok(())
    }

    /// READ: the raw value.
    pub fn read(&mut self, raw: &[u8]) -> Result<Vec<u8>, XsError> {
        let path = self.path(raw, false)?;
        Ok(self.lookup(&path, NEED_READ)?.value)
    }

    /// WRITE: sets the value, creating the node and missing ancestors.
    pub fn write(&mut self, raw: &[u8], value: &[u8]) -> Result<(), XsError> {
        let path = self.path(raw, false)?;
        match self.lookup(&path, NEED_WRITE) {
            Ok(mut node) => {
                let old = charge(&path, Some(&node));
                node.value = value.to_vec();
                self.check_size(&node)?;
                self.afford(old, charge(&path, Some(&node)))?;
                self.view.set(&path, Some(node))?;
            }
            Err(XsError::NotFound) => self.create(&path, value)?,
            Err(e) => return Err(e),
        }
        self.announce(path, None)
    }

    /// MKDIR: creates the node (empty) unless it exists.
    pub fn mkdir(&mut self, raw: &[u8]) -> Result<(), XsError> {
        let path = self.path(raw, false)?;
        match self.lookup(&path, NEED_WRITE) {
            Ok(_) => Ok(()),
            Err(XsError::NotFound) => {
                self.create(&path, &[])?;
                self.announce(path, None)
            }
            Err(e) => Err(e),
        }
    }

    /// RM: removes the node and everything below it. A missing node is fine if its parent
    /// exists.
    pub fn rm(&mut self, raw: &[u8]) -> Result<(), XsError> {
        let path = self.path(raw, false)?;
        match self.lookup(&path, NEED_WRITE) {
            Ok(_) => {}
            Err(XsError::NotFound) => {
                return match self.view.get(parent(&path))? {
                    Some(_) => Ok(()),
                    None => Err(XsError::NotFound),
                };
            }
            Err(e) => return Err(e),
        }
        if path == "/" {
            return Err(XsError::Invalid);
        }
        let mut nodes = Vec::new();
        let mut stack = vec![path.clone()];
        while let Some(p) = stack.pop() {
            let Some(n) = self.view.get(&p)? else {
                continue;
            };
            stack.extend(n.children.iter().map(|c| join(&p, c)));
            let perms = n.perms.clone();
            nodes.push((p, perms));
        }
        let above_path = parent(&path);
        let mut above = self.lookup(above_path, Rights::default())?;
        let name = basename(&path);
        above.children.retain(|c| c != name);
        let above_perms = above.perms.clone();
        self.view.set(above_path, Some(above))?;
        for (p, _) in &nodes {
            self.view.set(p, None)?;
        }
        self.changes.push(Change::Removed {
            root: path,
            nodes,
            above: above_perms,
        });
        Ok(())
    }

    /// DIRECTORY: the children's names, each NUL-terminated.
    pub fn directory(&mut self, raw: &[u8]) -> Result<Vec<u8>, XsError> {
        let path = self.path(raw, false)?;
        Ok(self.lookup(&path, NEED_READ)?.child_list())
    }

    /// DIRECTORY_PART `path|offset|`: the generation, then the child list from byte `offset`,
    /// cut at a name boundary to fit a payload; an extra NUL marks the end of the list.
    pub fn directory_part(&mut self, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        let [raw, offset] = wire::args::<2>(payload)?;
        let path = self.path(raw, false)?;
        let node = self.lookup(&path, NEED_READ)?;
        let offset = usize::try_from(wire::decimal(offset)?).map_err(|_| XsError::Invalid)?;
        let list = node.child_list();
        let mut out = format!("{}\0", node.generation).into_bytes();
        let rest = list.get(offset..).unwrap_or(&[]);
        let room = XENSTORE_PAYLOAD_MAX as usize - out.len() - 1;
        let mut len = 0;
        for name in rest.split_inclusive(|&b| b == 0) {
            if len + name.len() > room {
                break;
            }
            len += name.len();
        }
        out.extend_from_slice(&rest[..len]);
        if len == rest.len() {
            out.push(0);
        }
        Ok(out)
    }

    /// GET_PERMS: the entries, each NUL-terminated.
    pub fn get_perms(&mut self, raw: &[u8]) -> Result<Vec<u8>, XsError> {
        let path = self.path(raw, true)?;
        let node = self.lookup(&path, NEED_READ)?;
        let mut out = Vec::new();
        for p in &node.perms {
            p.encode(&mut out);
        }
        Ok(out)
    }

    /// SET_PERMS `path|perm|+`: only the owner (or dom0); only dom0 may change the owner.
    pub fn set_perms(&mut self, payload: &[u8]) -> Result<(), XsError> {
        let strings = wire::strings(payload);
        let Some((raw, entries)) = strings.split_first() else {
            return Err(XsError::Invalid);
        };
        if entries.is_empty() {
            return Err(XsError::Invalid);
        }
        if !self.who.privileged && quota::exceeds(entries.len(), self.quotas.perms_per_node) {
            return Err(XsError::NoSpace);
        }
        let perms = entries
            .iter()
            .map(|e| Perm::parse(e))
            .collect::<Result<Vec<_>, _>>()?;
        let path = self.path(raw, true)?;
        let mut node = self.lookup(&path, NEED_OWNER)?;
        if !self.who.privileged && perms[0].domid != node.owner() {
            return Err(XsError::NotPermitted);
        }
        let before = charge(&path, Some(&node));
        let old = core::mem::replace(&mut node.perms, perms);
        self.afford(before, charge(&path, Some(&node)))?;
        self.view.set(&path, Some(node))?;
        self.announce(path, Some(old))
    }

    /// Creates or overwrites `path` as the caller and, if `perms` is not empty, sets them;
    /// for dom0's own use.
    pub fn set_node(&mut self, raw: &[u8], value: &[u8], perms: &[Perm]) -> Result<(), XsError> {
        self.write(raw, value)?;
        if perms.is_empty() {
            return Ok(());
        }
        let path = self.path(raw, false)?;
        let mut node = self.lookup(&path, NEED_OWNER)?;
        let old = core::mem::replace(&mut node.perms, perms.to_vec());
        self.view.set(&path, Some(node))?;
        self.changes.pop(); // one announcement covers the write and the new permissions
        self.announce(path, Some(old))
    }
}
