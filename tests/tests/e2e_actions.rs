//! `Tether::check_action`: every kind of action the protocol checks goes
//! to the gateway with its own `ActionType` and context, through the same
//! pipeline as a tool call (cache, approvals). Real tonic on 127.0.0.1,
//! against the reference gateway, whose rules match `action:{kind}`.

use tether_gateway::desk::Review;
use tether_gateway::rules::RuleTable;
use tether_tests::{bounded, client_config, connected, gateway, serve, until};
use tether_tokio::client::{
    Action, Decision, FileOperation, LlmCall, NetworkCall, ProcessExec, ToolCall, ToolResult,
    VerdictSource,
};

#[tokio::test]
async fn every_action_kind_is_checked_with_its_own_type() {
    let rules = RuleTable::parse(
        "allow action:llm_call\ndeny action:process_exec\nallow action:tool_result\n\
         approve action:network_call 30\nallow read_file\ndefault deny\n",
    )
    .unwrap();
    let gw = serve(gateway().rules(rules)).await;
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint())).await;

    // (action, decision, the rule key the gateway matched it by)
    let cases: Vec<(Action, Decision, &str)> = vec![
        (
            LlmCall::new("gpt-5").into(),
            Decision::Allow,
            "action:llm_call",
        ),
        (
            ProcessExec::new("rm", ["-rf".to_owned(), "/".to_owned()]).into(),
            Decision::Deny,
            "action:process_exec",
        ),
        (
            FileOperation::new("write", "/etc/hosts").into(),
            Decision::Deny,
            "action:file_op",
        ),
        (
            ToolResult::new("read_file", "{\"ok\":true}").into(),
            Decision::Allow,
            "action:tool_result",
        ),
        (
            ToolCall::new("read_file").into(),
            Decision::Allow,
            "read_file",
        ),
    ];
    for (action, expected, key) in &cases {
        let v = bounded("check", tether.check_action("t:1", action))
            .await
            .unwrap();
        assert_eq!(v.decision, *expected, "{action:?}: {}", v.reason);
        assert_eq!(v.source, VerdictSource::Gateway, "{action:?}");
        // The gateway's reason starts with the key it matched: it saw the
        // action as its own kind.
        assert!(
            v.reason.starts_with(&format!("{key} ")),
            "{action:?}: {}",
            v.reason
        );
    }
    // Cached like a tool call, per kind and context.
    let again = tether
        .check_action("t:3", &LlmCall::new("gpt-5").into())
        .await
        .unwrap();
    assert_eq!(again.source, VerdictSource::Cache);
    let other_model = tether
        .check_action("t:3", &LlmCall::new("gpt-4").into())
        .await
        .unwrap();
    assert_eq!(other_model.source, VerdictSource::Gateway);

    // A network call waits for a reviewer, as an approval rule says.
    let waiting = tokio::spawn({
        let t = tether.clone();
        async move {
            t.check_action("t:4", &NetworkCall::new("example.com", 443, "https").into())
                .await
        }
    });
    until("the network call is pending", || admin.pending().len() == 1).await;
    let pending = admin.pending()[0].clone();
    admin.decide(&pending.request_id, Review::Approved).unwrap();
    let v = bounded("the reviewer's verdict", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.decision, Decision::Allow);
    assert!(matches!(v.source, VerdictSource::Reviewer { .. }));
}

/// `check_batch`: one `BatchCheck` for the actions not cached, verdicts in
/// order, the cached ones from the cache, a PENDING one waiting for its
/// reviewer, a terminated op denied for every action.
#[tokio::test]
async fn a_batch_is_checked_in_one_call_in_order() {
    let rules = RuleTable::parse(
        "allow action:llm_call\ndeny action:process_exec\napprove deploy 30\nallow read_file\ndefault deny\n",
    )
    .unwrap();
    let gw = serve(gateway().rules(rules)).await;
    let admin = gw.admin();
    let tether = connected(client_config(&gw.endpoint())).await;

    // Warm the cache with one of them.
    let first = tether
        .check_action("b:0", &ToolCall::new("read_file").into())
        .await
        .unwrap();
    assert_eq!(first.source, VerdictSource::Gateway);

    let batch: Vec<Action> = vec![
        LlmCall::new("gpt-5").into(),
        ToolCall::new("read_file").into(),
        ProcessExec::new("sh", []).into(),
        ToolCall::new("deploy").into(),
    ];
    let running = tokio::spawn({
        let t = tether.clone();
        let batch = batch.clone();
        async move { t.check_batch("b:1", &batch).await }
    });
    until("the deploy is pending", || admin.pending().len() == 1).await;
    let id = admin.pending()[0].request_id.clone();
    admin.decide(&id, Review::Denied).unwrap();
    let verdicts = bounded("the batch", running).await.unwrap().unwrap();
    let got: Vec<(Decision, bool)> = verdicts
        .iter()
        .map(|v| (v.decision, v.source == VerdictSource::Cache))
        .collect();
    assert_eq!(
        got,
        vec![
            (Decision::Allow, false),
            (Decision::Allow, true),
            (Decision::Deny, false),
            (Decision::Deny, false),
        ]
    );
    assert_eq!(
        verdicts[3].source,
        VerdictSource::Reviewer { approval_id: id }
    );
    assert_eq!(tether.status().checks.in_flight, 0);

    // A terminated op: every action denied, nothing sent.
    admin.terminate("b:2", tether_tests::agent_key()).unwrap();
    until("terminate applied", || {
        tether.ops().state("b:2") == tether_tokio::client::OpState::Terminated
    })
    .await;
    let verdicts = tether.check_batch("b:2", &batch).await.unwrap();
    assert_eq!(verdicts.len(), batch.len());
    assert!(verdicts
        .iter()
        .all(|v| v.source == VerdictSource::Terminated && !v.allowed()));
}
