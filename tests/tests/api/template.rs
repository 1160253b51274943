//! The template a deployer uses, read with a YAML parser: build metadata for
//! `sam build`, Cognito (groups = roles, custom:partner_id not writable by any app
//! client, both app clients accepted by the authorizer, an existing pool still
//! possible), CORS from a parameter, reserved concurrency on the public functions,
//! the API 5xx and dead-letter alarms, retained queues, and a README "Deployment"
//! section that names every function and parameter. The web console's side
//! (CloudFront, the bucket, the console client, `make deploy`) is in `web`.

use serde_yaml::Value as Yaml;
use std::collections::BTreeSet;
use tierdesk::domain::permissions::Role;
use tierdesk::http::identity::SERVICE_SCOPE;
use tierdesk_tests::{read_repo_file, repo_root};

mod web;

fn template() -> Yaml {
    serde_yaml::from_str(&read_repo_file("template.yaml")).expect("template parses")
}

/// `!Tag value` as (tag, value).
fn tagged(v: &Yaml) -> Option<(String, &Yaml)> {
    match v {
        Yaml::Tagged(t) => Some((t.tag.to_string().trim_start_matches('!').to_string(), &t.value)),
        _ => None,
    }
}

fn is_ref(v: &Yaml, name: &str) -> bool {
    tagged(v).is_some_and(|(tag, inner)| tag == "Ref" && inner.as_str() == Some(name))
}

fn resources_of_type<'a>(t: &'a Yaml, ty: &str) -> Vec<(String, &'a Yaml)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .map(|(k, r)| (k.as_str().unwrap_or_default().to_string(), r))
        .collect()
}

/// `!If [condition, then, else]` as its three parts.
fn if_branches(v: &Yaml) -> (&str, &Yaml, &Yaml) {
    let (tag, args) = tagged(v).unwrap_or_else(|| panic!("expected an !If: {v:?}"));
    assert_eq!(tag, "If", "{v:?}");
    let args = args.as_sequence().expect("!If arguments");
    (args[0].as_str().expect("!If condition"), &args[1], &args[2])
}

fn strings(v: &Yaml) -> Vec<String> {
    v.as_sequence().map(|s| s.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// Every role the code knows. The match is exhaustive: a new role does not compile
/// until it is listed here, and then this test asks for its group.
fn all_roles() -> Vec<Role> {
    let all = [Role::SalesRep, Role::SalesManager, Role::Admin, Role::Partner, Role::Service];
    for role in all {
        match role {
            Role::SalesRep | Role::SalesManager | Role::Admin | Role::Partner | Role::Service => {}
        }
    }
    all.to_vec()
}

#[test]
fn every_function_is_built_by_sam_build_from_its_crate() {
    let t = template();
    let functions = resources_of_type(&t, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 11);
    let makefile = read_repo_file("Makefile");
    let make_functions = makefile
        .lines()
        .find_map(|l| l.strip_prefix("FUNCTIONS ?="))
        .map(|l| l.split_whitespace().map(str::to_string).collect::<BTreeSet<_>>())
        .expect("Makefile FUNCTIONS");
    let mut crates = BTreeSet::new();
    for (name, f) in &functions {
        assert_eq!(f["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{name}: Metadata.BuildMethod");
        let code = f["Properties"]["CodeUri"].as_str().unwrap_or_else(|| panic!("{name}: CodeUri"));
        let krate = code
            .strip_prefix("functions/")
            .map(|c| c.trim_end_matches('/'))
            .unwrap_or_else(|| panic!("{name}: CodeUri {code} is not functions/<crate>/"));
        let manifest = std::fs::read_to_string(repo_root().join(code).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{name}: {code}Cargo.toml: {e}"));
        assert!(manifest.contains(&format!("name = \"{krate}\"")), "{name}: {code} is the crate {krate}");
        crates.insert(krate.to_string());
    }
    // `make build` builds the same crates without SAM.
    assert_eq!(crates, make_functions, "Makefile FUNCTIONS and the template's crates");
    // arm64 everywhere: the builder reads Architectures.
    assert_eq!(strings(&t["Globals"]["Function"]["Architectures"]), vec!["arm64"]);
}

#[test]
fn cognito_groups_are_the_roles_and_the_service_role_is_the_client_credentials_scope() {
    let t = template();
    let groups: BTreeSet<String> = resources_of_type(&t, "AWS::Cognito::UserPoolGroup")
        .iter()
        .map(|(_, g)| g["Properties"]["GroupName"].as_str().expect("GroupName").to_string())
        .collect();
    let roles: BTreeSet<String> =
        all_roles().into_iter().filter(|r| *r != Role::Service).map(|r| r.as_str().to_string()).collect();
    assert_eq!(groups, roles, "one Cognito group per role (the service role is a scope, not a group)");
    for name in &groups {
        assert_eq!(Role::parse(name).map(Role::as_str), Some(name.as_str()), "group {name} parses as its role");
    }
    // The service scope is the resource server's identifier/scope the code maps.
    let servers = resources_of_type(&t, "AWS::Cognito::UserPoolResourceServer");
    let [(_, server)] = &servers[..] else { panic!("one resource server: {servers:?}") };
    let id = server["Properties"]["Identifier"].as_str().unwrap();
    let scopes: Vec<String> = server["Properties"]["Scopes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| format!("{id}/{}", s["ScopeName"].as_str().unwrap()))
        .collect();
    assert_eq!(scopes, vec![SERVICE_SCOPE.to_string()]);
    // The service client: client credentials with that scope, a secret.
    let service = &t["Resources"]["ServiceAppClient"]["Properties"];
    assert_eq!(strings(&service["AllowedOAuthFlows"]), vec!["client_credentials"]);
    assert_eq!(strings(&service["AllowedOAuthScopes"]), vec![SERVICE_SCOPE]);
    assert_eq!(service["GenerateSecret"].as_bool(), Some(true));
    // The console (the web module below checks its flow and URLs): never the service
    // scope, no password flows.
    let console = &t["Resources"]["ConsoleAppClient"]["Properties"];
    let (_, scopes, _) = if_branches(&console["AllowedOAuthScopes"]);
    assert!(!strings(scopes).contains(&SERVICE_SCOPE.to_string()));
    assert!(!strings(&console["ExplicitAuthFlows"]).iter().any(|f| f.contains("PASSWORD")), "no password flows");
}

#[test]
fn no_app_client_can_write_custom_partner_id() {
    let t = template();
    let pool = &t["Resources"]["UserPool"]["Properties"];
    let schema = pool["Schema"].as_sequence().expect("Schema");
    assert!(schema.iter().any(|a| a["Name"].as_str() == Some("partner_id")), "the pool defines custom:partner_id");
    // Partners may sign up (docs/signup.md); what a self-registered account becomes is
    // decided by the signup function alone, wired as both triggers and invocable by
    // this pool only.
    assert_eq!(pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"].as_bool(), Some(false), "partner sign-up");
    for trigger in ["PostConfirmation", "PreTokenGeneration"] {
        let (tag, target) = tagged(&pool["LambdaConfig"][trigger]).unwrap_or_else(|| panic!("{trigger} is not wired"));
        assert_eq!((tag.as_str(), target.as_str()), ("GetAtt", Some("SignupFunction.Arn")), "{trigger}");
    }
    let permission = &t["Resources"]["SignupFunctionCognitoPermission"]["Properties"];
    assert_eq!(permission["Principal"].as_str(), Some("cognito-idp.amazonaws.com"));
    assert_eq!(
        tagged(&permission["SourceArn"]).map(|(tag, v)| (tag, v.as_str())),
        Some(("GetAtt".into(), Some("UserPool.Arn")))
    );
    assert_eq!(
        t["Resources"]["SignupFunction"]["Properties"]["CodeUri"].as_str(),
        Some("functions/signup/"),
        "the triggers run the signup crate"
    );
    assert!(
        t["Resources"]["SignupFunction"]["Properties"]["Policies"]
            .as_sequence()
            .is_some_and(|p| !format!("{p:?}").contains("cognito-idp")),
        "the triggers add claims at token time: no rights over the user pool"
    );
    let clients = resources_of_type(&t, "AWS::Cognito::UserPoolClient");
    assert_eq!(clients.len(), 2);
    for (name, client) in &clients {
        // Without WriteAttributes a client may write every attribute: it must be listed.
        let writable = strings(&client["Properties"]["WriteAttributes"]);
        assert!(!writable.is_empty(), "{name}: WriteAttributes must be explicit");
        assert!(
            !writable.iter().any(|a| a.starts_with("custom:")),
            "{name} can write {writable:?}; custom:partner_id must be set by an administrator only"
        );
    }
    // The console reads it: it is in the ID token the API sees.
    assert!(strings(&t["Resources"]["ConsoleAppClient"]["Properties"]["ReadAttributes"])
        .contains(&"custom:partner_id".to_string()));
}

#[test]
fn the_authorizer_accepts_both_app_clients_or_an_existing_pools() {
    let t = template();
    let jwt = &t["Resources"]["HttpApi"]["Properties"]["Auth"]["Authorizers"]["JwtAuthorizer"]["JwtConfiguration"];
    let (tag, audience) = tagged(&jwt["audience"]).expect("audience is an !If");
    assert_eq!(tag, "If");
    let audience = audience.as_sequence().unwrap();
    assert_eq!(audience[0].as_str(), Some("CreateUserPool"));
    let created = audience[1].as_sequence().expect("the created pool's clients");
    assert_eq!(created.len(), 2);
    assert!(is_ref(&created[0], "ConsoleAppClient") && is_ref(&created[1], "ServiceAppClient"), "{created:?}");
    assert!(is_ref(&audience[2], "JwtAudience"), "an existing pool's audiences");
    let (tag, issuer) = tagged(&jwt["issuer"]).expect("issuer is an !If");
    assert_eq!(tag, "If");
    let issuer = issuer.as_sequence().unwrap();
    let (_, created_issuer) = tagged(&issuer[1]).unwrap();
    assert!(created_issuer.as_str().unwrap().ends_with("${UserPool}"), "{created_issuer:?}");
    assert!(is_ref(&issuer[2], "JwtIssuer"));
    // Bringing a pool: an issuer given means no pool is created.
    let condition = &t["Conditions"]["CreateUserPool"];
    let (tag, args) = tagged(condition).unwrap();
    assert_eq!(tag, "Equals");
    assert!(is_ref(&args[0], "JwtIssuer") && args[1].as_str() == Some(""), "{condition:?}");
    assert_eq!(t["Parameters"]["JwtIssuer"]["Default"].as_str(), Some(""));
    let cognito = t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str().is_some_and(|ty| ty.starts_with("AWS::Cognito::")));
    for (name, r) in cognito {
        assert_eq!(r["Condition"].as_str(), Some("CreateUserPool"), "{name:?} is only created without JwtIssuer");
    }
}

#[test]
fn cors_allows_the_origins_of_its_parameter() {
    let t = template();
    let cors = &t["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"];
    assert!(is_ref(&cors["AllowOrigins"], "CorsAllowedOrigins"), "{cors:?}");
    assert_eq!(t["Parameters"]["CorsAllowedOrigins"]["Type"].as_str(), Some("CommaDelimitedList"));
    assert_eq!(cors["AllowCredentials"].as_bool(), Some(false));
    let headers = strings(&cors["AllowHeaders"]);
    for h in ["authorization", "content-type", "idempotency-key"] {
        assert!(headers.contains(&h.to_string()), "{h} allowed: {headers:?}");
    }
}

#[test]
fn public_functions_and_the_webhook_have_reserved_concurrency_from_parameters() {
    let t = template();
    let routes = devtools::routes::from_template(&read_repo_file("template.yaml")).unwrap();
    let public: BTreeSet<String> = routes.iter().filter(|r| r.public).map(|r| r.function.clone()).collect();
    assert!(public.contains("StripeWebhookFunction") && public.contains("TiersFunction"), "{public:?}");
    for function in &public {
        let reserved = &t["Resources"][function.as_str()]["Properties"]["ReservedConcurrentExecutions"];
        let (tag, args) = tagged(reserved).unwrap_or_else(|| panic!("{function}: ReservedConcurrentExecutions"));
        assert_eq!(tag, "If", "{function}");
        let param = if function == "StripeWebhookFunction" {
            "WebhookReservedConcurrency"
        } else {
            "PublicReservedConcurrency"
        };
        assert!(is_ref(&args[1], param), "{function} reserves {param}: {args:?}");
        assert_eq!(t["Parameters"][param]["Type"].as_str(), Some("Number"));
    }
}

#[test]
fn api_5xx_and_every_dead_letter_queue_alarm_and_the_queues_are_retained() {
    let t = template();
    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    let api_5xx = alarms.iter().find(|(_, a)| {
        let p = &a["Properties"];
        p["Namespace"].as_str() == Some("AWS/ApiGateway") && p["MetricName"].as_str() == Some("5xx")
    });
    let (_, api_5xx) = api_5xx.expect("an alarm on the HTTP API's 5xx metric");
    let dims = api_5xx["Properties"]["Dimensions"].as_sequence().unwrap();
    assert!(dims.iter().any(|d| d["Name"].as_str() == Some("ApiId") && is_ref(&d["Value"], "HttpApi")), "{dims:?}");
    assert!(dims.iter().any(|d| d["Name"].as_str() == Some("Stage") && d["Value"].as_str() == Some("$default")));
    assert!(is_ref(&api_5xx["Properties"]["Threshold"], "Api5xxAlarmThreshold"));

    let queues = resources_of_type(&t, "AWS::SQS::Queue");
    assert_eq!(queues.len(), 2, "the cron's and the transitions' dead-letter queues");
    for (name, queue) in &queues {
        assert_eq!(queue["DeletionPolicy"].as_str(), Some("Retain"), "{name}");
        assert_eq!(queue["UpdateReplacePolicy"].as_str(), Some("Retain"), "{name}");
        let alarmed = alarms.iter().any(|(_, a)| {
            let p = &a["Properties"];
            p["MetricName"].as_str() == Some("ApproximateNumberOfMessagesVisible")
                && p["Dimensions"].as_sequence().is_some_and(|d| {
                    d.iter().any(|d| {
                        tagged(&d["Value"])
                            .is_some_and(|(tag, v)| tag == "GetAtt" && v.as_str() == Some(&format!("{name}.QueueName")))
                    })
                })
        });
        assert!(alarmed, "{name} has an alarm on its visible messages");
    }
}

#[test]
fn the_readme_deployment_section_names_every_function_and_parameter() {
    let t = template();
    let readme = read_repo_file("README.md");
    let start = readme.find("\n## Deployment").expect("README has a Deployment section");
    let rest = &readme[start + 1..];
    let section = &rest[..rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3)];
    let mut missing = Vec::new();
    for name in t["Parameters"].as_mapping().unwrap().keys().filter_map(|k| k.as_str()) {
        if !section.contains(&format!("`{name}`")) {
            missing.push(format!("parameter {name}"));
        }
    }
    for (name, _) in resources_of_type(&t, "AWS::Serverless::Function") {
        if !section.contains(&format!("`{name}`")) {
            missing.push(format!("function {name}"));
        }
    }
    assert!(missing.is_empty(), "README \"Deployment\" does not name: {missing:?}");
}
