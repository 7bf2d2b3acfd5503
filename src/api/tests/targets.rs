//! Profile targets: all things, registered and unregistered things, thing groups and their children.

use super::*;

#[tokio::test]
async fn group_target_applies_to_its_things_and_child_groups_only() {
    let t = TestApp::new();
    t.post("/thing-groups/fleet", json!({})).await.ok();
    t.post(
        "/thing-groups/fleet-eu",
        json!({ "parentGroupName": "fleet" }),
    )
    .await
    .ok();
    t.post("/thing-groups/lab", json!({})).await.ok();
    t.post(
        "/thing-groups/orphan",
        json!({ "parentGroupName": "ghost" }),
    )
    .await
    .error(404, "ResourceNotFoundException");
    for thing in ["cam-1", "cam-eu", "cam-lab", "cam-loose"] {
        t.post(&format!("/things/{thing}"), json!({})).await.ok();
    }
    for (group, thing) in [
        ("fleet", "cam-1"),
        ("fleet-eu", "cam-eu"),
        ("lab", "cam-lab"),
    ] {
        t.put(
            "/thing-groups/addThingToThingGroup",
            Some(json!({ "thingGroupName": group, "thingName": thing })),
        )
        .await
        .ok();
    }
    t.put(
        "/thing-groups/addThingToThingGroup",
        Some(json!({ "thingGroupName": "fleet", "thingName": "ghost" })),
    )
    .await
    .error(404, "ResourceNotFoundException");

    t.create_profile("fleet-ports", json!([few_ports()])).await;
    t.attach("fleet-ports", &group_arn("fleet")).await;
    t.put(
        &format!(
            "/security-profiles/fleet-ports/targets?securityProfileTargetArn={}",
            enc(&group_arn("ghost"))
        ),
        None,
    )
    .await
    .error(404, "ResourceNotFoundException");

    for thing in ["cam-1", "cam-eu", "cam-lab", "cam-loose", "unregistered"] {
        t.count(thing, "aws:num-listening-tcp-ports", 9).await;
    }
    let active = t.active("").await;
    assert_eq!(things_of(&active), ["cam-1", "cam-eu"]);

    // ListTargetsForSecurityProfile and ListSecurityProfilesForTarget.
    let targets = t.get("/security-profiles/fleet-ports/targets").await.ok();
    assert_eq!(
        targets["securityProfileTargets"],
        json!([{ "arn": group_arn("fleet") }])
    );
    let direct = t
        .get(&format!(
            "/security-profiles-for-target?securityProfileTargetArn={}",
            enc(&group_arn("fleet"))
        ))
        .await
        .ok();
    assert_eq!(
        direct["securityProfileTargetMappings"],
        json!([{
            "securityProfileIdentifier": {
                "name": "fleet-ports",
                "arn": "arn:aws:iot:us-east-1:123456789012:securityprofile/fleet-ports"
            },
            "target": { "arn": group_arn("fleet") }
        }])
    );
    let child = t
        .get(&format!(
            "/security-profiles-for-target?securityProfileTargetArn={}",
            enc(&group_arn("fleet-eu"))
        ))
        .await
        .ok();
    assert_eq!(child["securityProfileTargetMappings"], json!([]));
    let child = t
        .get(&format!(
            "/security-profiles-for-target?recursive=true&securityProfileTargetArn={}",
            enc(&group_arn("fleet-eu"))
        ))
        .await
        .ok();
    assert_eq!(
        child["securityProfileTargetMappings"][0]["securityProfileIdentifier"]["name"],
        "fleet-ports"
    );
    assert_eq!(
        child["securityProfileTargetMappings"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    t.get("/security-profiles-for-target?recursive=maybe&securityProfileTargetArn=x")
        .await
        .error(400, INVALID_REQUEST);

    // Detaching something that is not attached is a ResourceNotFound.
    t.send(
        Method::DELETE,
        &format!(
            "/security-profiles/fleet-ports/targets?securityProfileTargetArn={}",
            enc(&group_arn("lab"))
        ),
        None,
    )
    .await
    .error(404, "ResourceNotFoundException");
}
#[tokio::test]
async fn registered_and_unregistered_targets_follow_create_thing() {
    let t = TestApp::new();
    t.create_profile("reg", json!([few_ports()])).await;
    t.attach("reg", REGISTERED).await;
    t.create_profile("unreg", json!([few_ports()])).await;
    t.attach("unreg", UNREGISTERED).await;
    let thing = t.post("/things/known", json!({})).await.ok();
    assert_eq!(
        thing["thingArn"],
        "arn:aws:iot:us-east-1:123456789012:thing/known"
    );

    t.count("known", "aws:num-listening-tcp-ports", 9).await;
    t.count("stranger", "aws:num-listening-tcp-ports", 9).await;
    let reg = t.active("securityProfileName=reg").await;
    assert_eq!(things_of(&reg), ["known"]);
    let unreg = t.active("securityProfileName=unreg").await;
    assert_eq!(things_of(&unreg), ["stranger"]);

    // Registering the stranger moves it from one target to the other: its unregistered-things
    // alarm is invalidated, and its next datapoint is judged by the registered-things profile.
    t.advance_secs(60);
    t.post("/things/stranger", json!({})).await.ok();
    assert!(t.active("securityProfileName=unreg").await.is_empty());
    assert!(event_keys(&t.events("").await).contains(&key(
        "stranger",
        "unreg",
        "few-ports",
        "alarm-invalidated"
    )));
    t.count("stranger", "aws:num-listening-tcp-ports", 9).await;
    let reg = t.active("securityProfileName=reg").await;
    assert_eq!(things_of(&reg), ["known", "stranger"]);
}
#[tokio::test]
async fn recursive_profiles_for_target_include_parent_and_child_groups() {
    let t = TestApp::new();
    t.post("/thing-groups/fleet", json!({})).await.ok();
    t.post(
        "/thing-groups/fleet-eu",
        json!({ "parentGroupName": "fleet" }),
    )
    .await
    .ok();
    t.post(
        "/thing-groups/fleet-eu-1",
        json!({ "parentGroupName": "fleet-eu" }),
    )
    .await
    .ok();
    t.post("/thing-groups/lab", json!({})).await.ok();
    for (profile, group) in [
        ("on-fleet", "fleet"),
        ("on-eu", "fleet-eu"),
        ("on-eu-1", "fleet-eu-1"),
        ("on-lab", "lab"),
    ] {
        t.create_profile(profile, json!([])).await;
        t.attach(profile, &group_arn(group)).await;
    }
    let mappings = |group: &str, recursive: bool| {
        format!(
            "/security-profiles-for-target?recursive={recursive}&securityProfileTargetArn={}",
            enc(&group_arn(group))
        )
    };
    let names = |body: Value| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = body["securityProfileTargetMappings"]
            .as_array()
            .expect("mappings")
            .iter()
            .map(|m| {
                (
                    m["securityProfileIdentifier"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    m["target"]["arn"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(
        names(t.get(&mappings("fleet-eu", false)).await.ok()),
        [("on-eu".to_owned(), group_arn("fleet-eu"))]
    );
    // Recursive: the profiles that reach the group from its ancestors, and those on the groups
    // below it, each with the target it is attached to.
    assert_eq!(
        names(t.get(&mappings("fleet-eu", true)).await.ok()),
        [
            ("on-eu".to_owned(), group_arn("fleet-eu")),
            ("on-eu-1".to_owned(), group_arn("fleet-eu-1")),
            ("on-fleet".to_owned(), group_arn("fleet")),
        ]
    );
    assert_eq!(
        names(t.get(&mappings("fleet", true)).await.ok()),
        [
            ("on-eu".to_owned(), group_arn("fleet-eu")),
            ("on-eu-1".to_owned(), group_arn("fleet-eu-1")),
            ("on-fleet".to_owned(), group_arn("fleet")),
        ]
    );
    assert_eq!(
        names(t.get(&mappings("lab", true)).await.ok()),
        [("on-lab".to_owned(), group_arn("lab"))]
    );
}
