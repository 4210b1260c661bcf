//! `ctl xenstore`: its verbs, and its output as `xenstore-ls` / `xenstore-read` print it,
//! or as JSON.

use clap::Subcommand;
use protocol::mgmt::{XenstoreNode, XenstoreOp};
use serde_json::{json, Value};

/// What `ctl xenstore` does. Paths are absolute.
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum XsVerb {
    /// The tree under PATH with values (`xenstore-ls -f` style paths with --json).
    Ls {
        /// Where to start.
        #[arg(value_name = "PATH", default_value = "/")]
        path: String,
    },
    /// The value at PATH (`xenstore-read`).
    Read {
        /// The node.
        #[arg(value_name = "PATH")]
        path: String,
    },
    /// Create or overwrite PATH with VALUE (`xenstore-write`); fires the node's watches.
    Write {
        /// The node.
        #[arg(value_name = "PATH")]
        path: String,
        /// Its new value.
        #[arg(value_name = "VALUE")]
        value: String,
    },
    /// Remove PATH and everything under it (`xenstore-rm`); fires the watches.
    Rm {
        /// The node.
        #[arg(value_name = "PATH")]
        path: String,
    },
}

impl XsVerb {
    /// The management request's operation.
    pub fn op(&self) -> XenstoreOp {
        match self {
            Self::Ls { path } => XenstoreOp::List { path: path.clone() },
            Self::Read { path } => XenstoreOp::Read { path: path.clone() },
            Self::Write { path, value } => XenstoreOp::Write {
                path: path.clone(),
                value: value.as_bytes().to_vec(),
            },
            Self::Rm { path } => XenstoreOp::Remove { path: path.clone() },
        }
    }
}

/// A value as `xenstore-ls` shows it: printable ASCII as is, `"` and `\` escaped, every
/// other byte as `\xNN`.
pub fn escaped(value: &[u8]) -> String {
    let mut s = String::new();
    for &b in value {
        match b {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(char::from(b));
            }
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// A listing as an indented tree: one line per node, `name = "value"`, one space of
/// indent per level below `root` (which is not printed itself, as `xenstore-ls` does).
pub fn tree_text(root: &str, nodes: &[XenstoreNode], truncated: bool) -> String {
    let base = depth(root);
    let mut out = String::new();
    for n in nodes.iter().filter(|n| n.path != root) {
        let name = n.path.rsplit('/').next().unwrap_or(&n.path);
        let indent = depth(&n.path).saturating_sub(base + 1);
        out.push_str(&format!(
            "{:indent$}{name} = \"{}\"\n",
            "",
            escaped(&n.value)
        ));
    }
    if truncated {
        out.push_str("... (cut to fit one reply: list a deeper path for the rest)\n");
    }
    out
}

fn depth(path: &str) -> usize {
    path.split('/').filter(|c| !c.is_empty()).count()
}

/// A listing as JSON: every node's full path and value (lossy UTF-8).
pub fn tree_json(root: &str, nodes: &[XenstoreNode], truncated: bool) -> Value {
    let nodes: Vec<Value> = nodes
        .iter()
        .map(|n| json!({ "path": n.path, "value": String::from_utf8_lossy(&n.value) }))
        .collect();
    json!({ "path": root, "nodes": nodes, "truncated": truncated })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(path: &str, value: &str) -> XenstoreNode {
        XenstoreNode {
            path: path.into(),
            value: value.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_tree_prints_like_xenstore_ls() {
        let nodes = [
            node("/local/domain/1", ""),
            node("/local/domain/1/name", "rtos"),
            node("/local/domain/1/data", ""),
            node("/local/domain/1/data/x", "a\"b\n"),
        ];
        assert_eq!(
            tree_text("/local/domain/1", &nodes, false),
            "name = \"rtos\"\ndata = \"\"\n x = \"a\\\"b\\x0a\"\n"
        );
        let from_root = [node("/", ""), node("/local", ""), node("/local/domain", "")];
        assert_eq!(
            tree_text("/", &from_root, true),
            "local = \"\"\n domain = \"\"\n... (cut to fit one reply: list a deeper path for the rest)\n"
        );
        let j = tree_json("/local/domain/1", &nodes, false);
        assert_eq!(j["nodes"][1]["path"], "/local/domain/1/name");
        assert_eq!(j["nodes"][1]["value"], "rtos");
        assert_eq!(j["truncated"], false);
    }

    #[test]
    fn verbs_become_operations() {
        let w = XsVerb::Write {
            path: "/a".into(),
            value: "1".into(),
        };
        assert_eq!(
            w.op(),
            XenstoreOp::Write {
                path: "/a".into(),
                value: b"1".to_vec()
            }
        );
        assert_eq!(
            XsVerb::Ls { path: "/".into() }.op(),
            XenstoreOp::List { path: "/".into() }
        );
    }
}
