//! TypeScript declarations for everything that crosses IPC, generated from the Rust
//! types with ts-rs into `ui/src/lib/bindings/index.ts` (committed). The test
//! `bindings_are_current` fails when the committed file differs from what the types
//! say; run it with `UPDATE_BINDINGS=1` to rewrite the file.

use ts_rs::TS;

use crate::dto::*;
use crate::dto_sync::*;
use crate::dto_transfer::*;

/// Where the generated file lives, relative to the repository root.
pub const BINDINGS_FILE: &str = "ui/src/lib/bindings/index.ts";

macro_rules! declare {
    ($cfg:expr, $out:expr; $($t:ty),* $(,)?) => {
        $(
            $out.push_str("export ");
            $out.push_str(&<$t as TS>::decl($cfg));
            $out.push_str("\n\n");
        )*
    };
}

/// The whole generated file.
pub fn typescript() -> String {
    use bpv_engine::index::{FolderCount, IndexStats, SearchHit, TagCount};
    use bpv_engine::library::{InvalidFile, ReconcileReport, ReindexReport, TrashEntry, Version};
    use bpv_engine::secrets::{
        AuditEntry, CredentialInfo, CredentialList, CredentialUse, KeyStatus, MissingReference, RecoverReport,
        RotateReport, StoreChoice, StoreKind,
    };

    let cfg = ts_rs::Config::new().with_large_int("number");
    let cfg = &cfg;
    let mut out = String::from(
        "// Generated from the Rust types by src-tauri/src/bindings.rs (ts-rs). Do not edit:\n\
         // change the Rust types, then run `UPDATE_BINDINGS=1 cargo test -p blueprint-vault bindings`.\n\n",
    );
    declare!(cfg, out;
        bpv_engine::Item, SearchHit, TagCount, FolderCount, IndexStats, TrashEntry, Version,
        InvalidFile, ReindexReport, ReconcileReport,
        IpcError, SortBy, ListArgs, SearchArgs, ItemPage, SearchPage, Sidebar, LibraryState,
        Problem, GraphNode, GraphEdge, YamlCheck, BlueprintDetail, MetaEdit, LibraryEventKind, LibraryEvent,
        Operation, OperationProgress, BackupFinished, ImportClass, ImportItem, ImportError, ImportCounts,
        ImportPlanView, ConflictChoice, ItemDecision, RenamedItem, ImportSummary, ExportScope, SecretFinding,
        ExportPreview, ExportDone, BackupSchedule, BackupFailure, BackupSettingsView, SnapshotRow, SnapshotFile, SnapshotProblem,
        VerifyResult, BackupDone, RestoreDone, RetentionSettings, PrunePreviewView, PruneDone,
        StoreKind, StoreChoice, CredentialInfo, MissingReference, CredentialList, KeyStatus,
        RecoverReport, RotateReport, AuditEntry, CredentialUse,
        SyncLinkArgs, SyncItemState, SyncRefused, SyncStatusView, SyncDone, SyncProgress,
        MigrateArgs, MigrateDone,
    );
    out.push_str(&crate::commands::typescript(cfg));
    out.push_str(&format!(
        "\n/** Every window event and its payload. */\nexport type Events = {{ {LIBRARY_CHANGED:?}: LibraryEvent; {OPERATION_PROGRESS:?}: OperationProgress; {BACKUP_FINISHED:?}: BackupFinished; {SYNC_PROGRESS:?}: SyncProgress; {SYNC_STATUS:?}: SyncStatusView }};\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn bindings_are_current() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(super::BINDINGS_FILE);
        let fresh = super::typescript();
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &fresh).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            committed == fresh,
            "{} is out of date with the Rust types: run `UPDATE_BINDINGS=1 cargo test -p blueprint-vault bindings` and commit it",
            super::BINDINGS_FILE
        );
    }
}
