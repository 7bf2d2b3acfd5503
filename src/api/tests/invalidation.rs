//! alarm-invalidated: deleting a profile, removing a behavior, detaching a target, leaving a group, and the sweep of silent things.

use super::*;

#[tokio::test]
async fn deleting_a_profile_in_alarm_invalidates_its_violations() {
    let t = in_alarm().await;
    t.delete("/security-profiles/p").await.ok();
    assert!(t.active("").await.is_empty());
    let events = t.events("").await;
    let invalidated: Vec<_> = events
        .iter()
        .filter(|e| e["violationEventType"] == "alarm-invalidated")
        .collect();
    assert_eq!(invalidated.len(), 2, "{events:?}");
    for e in invalidated {
        assert_eq!(
            e["violationEventTime"].as_f64(),
            Some((T0_MS + 60_000) as f64 / 1000.0)
        );
    }
}
#[tokio::test]
async fn removing_a_behavior_in_alarm_invalidates_only_its_violation() {
    let t = in_alarm().await;
    t.patch(
        "/security-profiles/p",
        json!({ "behaviors": [few_ports()] }),
    )
    .await
    .ok();
    let active = t.active("").await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["behavior"]["name"], "few-ports");
    let events = event_keys(&t.events("").await);
    assert!(events.contains(&key("cam", "p", "few-conns", "alarm-invalidated")));
    assert!(!events.contains(&key("cam", "p", "few-ports", "alarm-invalidated")));
    // A description-only update keeps the alarm.
    t.patch(
        "/security-profiles/p",
        json!({ "securityProfileDescription": "x" }),
    )
    .await
    .ok();
    assert_eq!(t.active("").await.len(), 1);
    // Changing the behavior's threshold makes the old alarm meaningless too.
    t.patch(
        "/security-profiles/p",
        json!({ "behaviors": [rule("few-ports", "aws:num-listening-tcp-ports", "less-than", json!({ "count": 50 }))] }),
    )
    .await
    .ok();
    assert!(t.active("").await.is_empty());
}
#[tokio::test]
async fn detaching_the_target_in_alarm_invalidates_the_violations() {
    let t = in_alarm().await;
    t.send(
        Method::DELETE,
        &format!(
            "/security-profiles/p/targets?securityProfileTargetArn={}",
            enc(ALL_THINGS)
        ),
        None,
    )
    .await
    .ok();
    assert!(t.active("").await.is_empty());
    let events = event_keys(&t.events("").await);
    assert!(events.contains(&key("cam", "p", "few-ports", "alarm-invalidated")));
    assert!(events.contains(&key("cam", "p", "few-conns", "alarm-invalidated")));
    // The profile itself remains, with no targets.
    let targets = t.get("/security-profiles/p/targets").await.ok();
    assert_eq!(targets["securityProfileTargets"], json!([]));
}
#[tokio::test]
async fn deleting_a_group_detaches_its_profiles_and_invalidates_their_alarms() {
    let t = TestApp::new();
    t.post("/thing-groups/fleet", json!({})).await.ok();
    t.post(
        "/thing-groups/fleet-eu",
        json!({ "parentGroupName": "fleet" }),
    )
    .await
    .ok();
    t.post("/things/cam-1", json!({})).await.ok();
    t.put(
        "/thing-groups/addThingToThingGroup",
        Some(json!({ "thingGroupName": "fleet", "thingName": "cam-1" })),
    )
    .await
    .ok();
    t.create_profile("fleet-ports", json!([few_ports()])).await;
    t.attach("fleet-ports", &group_arn("fleet")).await;
    t.count("cam-1", "aws:num-listening-tcp-ports", 9).await;
    assert_eq!(things_of(&t.active("").await), ["cam-1"]);

    t.delete("/thing-groups/fleet").await.ok();
    assert!(t.active("").await.is_empty());
    let events = event_keys(&t.events("").await);
    assert!(events.contains(&key(
        "cam-1",
        "fleet-ports",
        "few-ports",
        "alarm-invalidated"
    )));
    let targets = t.get("/security-profiles/fleet-ports/targets").await.ok();
    assert_eq!(targets["securityProfileTargets"], json!([]));
    let child = t.get("/thing-groups/fleet-eu").await.ok();
    assert_eq!(child["thingGroupMetadata"]["parentGroupName"], Value::Null);
}
#[tokio::test]
async fn a_thing_silent_for_two_days_is_invalidated_by_the_sweep() {
    let t = in_alarm().await;
    // A thing that keeps reporting stays in alarm.
    t.count("busy", "aws:num-listening-tcp-ports", 9).await;
    t.advance_secs(2 * 24 * 3600 - 120);
    t.count("busy", "aws:num-listening-tcp-ports", 9).await;
    assert_eq!(t.detect.sweep().expect("sweep"), 0);
    assert_eq!(t.active("").await.len(), 3);
    t.advance_secs(120);
    let invalidated = t.detect.sweep().expect("sweep");
    assert_eq!(invalidated, 2);
    assert_eq!(things_of(&t.active("").await), ["busy"]);
    let events = event_keys(&t.events("&thingName=cam").await);
    assert!(events.contains(&key("cam", "p", "few-ports", "alarm-invalidated")));
    assert!(events.contains(&key("cam", "p", "few-conns", "alarm-invalidated")));
    // Sweeping again finds nothing new.
    assert_eq!(t.detect.sweep().expect("sweep"), 0);
}
#[tokio::test]
async fn leaving_a_group_invalidates_but_another_target_keeps_the_alarm() {
    let t = TestApp::new();
    t.post("/thing-groups/fleet", json!({})).await.ok();
    t.post("/thing-groups/lab", json!({})).await.ok();
    for thing in ["cam", "door"] {
        t.post(&format!("/things/{thing}"), json!({})).await.ok();
        t.put(
            "/thing-groups/addThingToThingGroup",
            Some(json!({ "thingGroupName": "fleet", "thingName": thing })),
        )
        .await
        .ok();
    }
    t.put(
        "/thing-groups/addThingToThingGroup",
        Some(json!({ "thingGroupArn": group_arn("lab"), "thingArn": "arn:aws:iot:us-east-1:123456789012:thing/door" })),
    )
    .await
    .ok();
    t.create_profile("p", json!([few_ports()])).await;
    t.attach("p", &group_arn("fleet")).await;
    t.attach("p", &group_arn("lab")).await;
    t.count("cam", "aws:num-listening-tcp-ports", 9).await;
    t.count("door", "aws:num-listening-tcp-ports", 9).await;
    assert_eq!(things_of(&t.active("").await), ["cam", "door"]);

    // Both leave fleet; door is still targeted through lab.
    t.advance_secs(60);
    for thing in ["cam", "door"] {
        t.put(
            "/thing-groups/removeThingFromThingGroup",
            Some(json!({ "thingGroupName": "fleet", "thingName": thing })),
        )
        .await
        .ok();
    }
    assert_eq!(things_of(&t.active("").await), ["door"]);
    let events = event_keys(&t.events("").await);
    assert!(events.contains(&key("cam", "p", "few-ports", "alarm-invalidated")));
    assert!(!events.contains(&key("door", "p", "few-ports", "alarm-invalidated")));

    // Deleting the thing ends its group membership, and so its alarm.
    t.delete("/things/door").await.ok();
    assert!(t.active("").await.is_empty());
    t.get("/things/door")
        .await
        .error(404, "ResourceNotFoundException");
}
