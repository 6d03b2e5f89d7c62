//! The child job queued after a parent's success is decided once, in core
//! (`slipway_core::notify::child_job`): `slipway serve` queues exactly that job, as the notifier
//! Lambda does on AWS — never a copy of the parent's job with its delivery, diff or visibility.

use slipway_core::notify::{self, BuildStatus};
use slipway_core::plan::{ChangeSource, Plan, PlannedImage};
use slipway_core::{Job, Trigger};
use slipway_serve::store::{Finished, Store};

fn push_job() -> Job {
    Job {
        id: "push-7f0c".into(),
        trigger: Trigger::Push,
        delivery_id: "7f0c2a1e-0000-4000-8000-000000000001".into(),
        repository: "acme/site".into(),
        clone_url: "file:///srv/git/site".into(),
        private: true,
        default_branch: "main".into(),
        git_ref: "refs/heads/main".into(),
        before: "a".repeat(40),
        after: "b".repeat(40),
        commit: "b".repeat(40),
        created: false,
        forced: true,
        changed_paths: vec!["base/Dockerfile".into()],
        changes_incomplete: None,
        images: Vec::new(),
    }
}

#[test]
fn a_parent_success_queues_the_child_job_core_decides() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("slipway.db")).unwrap();
    let parent = push_job();
    store.insert_job(&parent).unwrap();
    let plan = Plan {
        repository: parent.repository.clone(),
        git_ref: parent.git_ref.clone(),
        commit: parent.commit.clone(),
        changes: ChangeSource::Named,
        images: vec![PlannedImage {
            name: "acme/base".into(),
            commit: parent.commit.clone(),
            tags: vec!["main".into()],
            children: vec!["acme/app".into()],
            ..PlannedImage::default()
        }],
        errors: Vec::new(),
        skipped: Vec::new(),
    };
    store.record_plan(&parent, &plan, false).unwrap();
    let (claimed, _) = store.claim_runnable(1).unwrap();
    let outcome = serde_json::Value::Null;
    let done = Finished {
        succeeded: true,
        cancelled: false,
        digest: Some("sha256:0123"),
        error: None,
        outcome: &outcome,
    };
    store.finish_build(&claimed[0], &parent, &done).unwrap();
    let built = store.build(claimed[0].id).unwrap().unwrap();

    // What the notification decides for this build (and passes to the queue sink).
    let o = slipway_serve::outcome::outcome(&built, Some(&parent), vec!["acme/app".into()]);
    assert_eq!(o.status, BuildStatus::Succeeded);
    let decided = notify::child_job(&o, "acme/app");
    let queued = store
        .job(&decided.id)
        .unwrap()
        .expect("the child is queued under the id core gives it");
    assert_eq!(queued, decided);

    // What a user sees of it: a rebuild of the child at the parent's commit, from the same
    // repository, caused by the parent's build — not a replay of the parent's push.
    assert_eq!(queued.images, ["acme/app"]);
    assert_eq!(queued.commit, parent.commit);
    assert_eq!(queued.clone_url, parent.clone_url);
    assert_eq!(
        queued.trigger,
        Trigger::Parent {
            image: "acme/base".into(),
            build_id: built.id.to_string()
        }
    );
    assert_ne!(queued.delivery_id, parent.delivery_id);
    assert_eq!(queued.before, parent.commit);
    assert!(queued.changed_paths.is_empty());
    assert!(!queued.forced);
    assert!(!queued.private);
}
