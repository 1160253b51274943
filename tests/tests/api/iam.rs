//! IAM proven against the calls each function makes.
//!
//! During the suite (`infra/test.sh` sets `TIERDESK_RECORD_CALLS`), every DynamoDB
//! operation and SES send made under a function's label (the dev gateway labels each
//! handler call with the function's logical id, the cron labels its run) is recorded
//! as `<function> <action> <resource>` (`tierdesk::calls`). The recorded test below
//! runs after the suite and asserts that each function's policy in `template.yaml`
//! grants exactly those DynamoDB actions on exactly those resources (the table, and
//! each index it queries by name), and exactly the SES actions it uses: a missing
//! grant is an AccessDenied in AWS, an extra one is privilege nothing needs.
//!
//! Secrets Manager is only reached in AWS, so it is checked statically: a function
//! gets `secretsmanager:GetSecretValue` on the Stripe secret exactly when its code
//! reads the Stripe configuration and its environment names the secret.

use serde_yaml::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use tierdesk_tests::read_repo_file;

type Grants = BTreeSet<(String, String)>;

fn template() -> Yaml {
    serde_yaml::from_str(&read_repo_file("template.yaml")).expect("template parses")
}

/// Logical ids of the Lambda functions in the template.
fn functions(t: &Yaml) -> Vec<String> {
    let resources = t["Resources"].as_mapping().expect("Resources");
    resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .filter_map(|(k, _)| k.as_str().map(str::to_string))
        .collect()
}

fn untag(v: &Yaml) -> Option<(String, &Yaml)> {
    match v {
        Yaml::Tagged(t) => Some((t.tag.to_string().trim_start_matches('!').to_string(), &t.value)),
        _ => None,
    }
}

/// A policy `Resource` as short names: `table`, `index/<name>`, `stream`, `secret`,
/// `identity`, `configuration-set`, or the raw text of anything else.
fn resource_names(v: &Yaml) -> Vec<String> {
    // (Tags first: serde_yaml's as_sequence sees through them.)
    if let (Yaml::Sequence(seq), None) = (v, untag(v)) {
        return seq.iter().flat_map(resource_names).collect();
    }
    match untag(v) {
        Some((tag, inner)) if tag == "If" => {
            // [condition, then, else]: both branches may apply.
            inner.as_sequence().map(|s| s.iter().skip(1).flat_map(resource_names).collect()).unwrap_or_default()
        }
        Some((tag, inner)) if tag == "GetAtt" && inner.as_str() == Some("Table.Arn") => vec!["table".into()],
        Some((tag, inner)) if tag == "GetAtt" && inner.as_str() == Some("Table.StreamArn") => vec!["stream".into()],
        Some((tag, inner)) if tag == "Ref" && inner.as_str() == Some("StripeSecretArn") => vec!["secret".into()],
        Some((tag, inner)) if tag == "Sub" => {
            let text = inner.as_str().unwrap_or_default();
            if let Some(index) = text.strip_prefix("${Table.Arn}/index/") {
                vec![format!("index/{index}")]
            } else if text.ends_with(":identity/${MailIdentity}") {
                vec!["identity".into()]
            } else if text.ends_with(":configuration-set/${MailConfigurationSet}") {
                vec!["configuration-set".into()]
            } else {
                vec![text.to_string()]
            }
        }
        _ => vec![format!("{v:?}")],
    }
}

fn actions(statement: &Yaml) -> Vec<String> {
    match &statement["Action"] {
        Yaml::String(a) => vec![a.clone()],
        Yaml::Sequence(s) => s.iter().filter_map(|a| a.as_str().map(str::to_string)).collect(),
        other => panic!("unexpected Action {other:?}"),
    }
}

/// Every (action, resource) an inline policy document's Allow statements grant.
fn document_grants(doc: &Yaml) -> Grants {
    let mut out = Grants::new();
    for statement in doc["Statement"].as_sequence().into_iter().flatten() {
        assert_eq!(statement["Effect"].as_str(), Some("Allow"), "only Allow statements are expected: {statement:?}");
        for action in actions(statement) {
            for resource in resource_names(&statement["Resource"]) {
                out.insert((action.clone(), resource));
            }
        }
    }
    out
}

/// What a function's `Policies` grant (inline documents; a SAM policy template
/// or managed policy would be invisible to this test, so it is refused).
fn function_grants(t: &Yaml, function: &str) -> Grants {
    let mut out = Grants::new();
    for policy in t["Resources"][function]["Properties"]["Policies"].as_sequence().into_iter().flatten() {
        assert!(
            policy["Statement"].is_sequence(),
            "{function}: every policy must be an inline document (Version + Statement) so this test can read it: {policy:?}"
        );
        out.extend(document_grants(policy));
    }
    out
}

fn service_of(action: &str) -> &str {
    action.split(':').next().unwrap_or_default()
}

/// The recorded calls, per function.
fn recorded() -> BTreeMap<String, Grants> {
    let path = std::env::var(tierdesk::calls::RECORD_ENV).unwrap_or_else(|_| {
        panic!(
            "{} is not set: this test checks the calls the suite recorded; infra/test.sh runs it after the suite",
            tierdesk::calls::RECORD_ENV
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read the recorded calls {path}: {e}"));
    let mut out: BTreeMap<String, Grants> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [function, action, resource] = parts[..] else { panic!("malformed recorded line {line:?} in {path}") };
        out.entry(function.to_string()).or_default().insert((action.to_string(), resource.to_string()));
    }
    assert!(!out.is_empty(), "{path} holds no recorded calls: was the suite run with it set?");
    out
}

/// The recorded calls of the whole suite against every function's policy. Run by
/// `infra/test.sh` after the suite; alone it has nothing to read.
#[test]
#[ignore = "needs the calls recorded by a full run of the suite (infra/test.sh runs it last)"]
fn every_function_is_granted_exactly_the_dynamodb_and_ses_actions_it_calls() {
    let t = template();
    let calls = recorded();
    let names = functions(&t);
    let mut problems = Vec::new();
    for function in calls.keys() {
        if !names.contains(function) {
            problems.push(format!("calls were recorded for {function}, which template.yaml does not define"));
        }
    }
    for function in &names {
        let granted: Grants = function_grants(&t, function)
            .into_iter()
            .filter(|(a, _)| service_of(a) == "dynamodb")
            .chain(
                // SES: the actions are compared; the resources are the sending identity
                // (and the configuration set), checked statically below.
                function_grants(&t, function).into_iter().filter(|(a, r)| service_of(a) == "ses" && r == "identity"),
            )
            .collect();
        let called = calls.get(function).cloned().unwrap_or_default();
        for (action, resource) in called.difference(&granted) {
            problems.push(format!(
                "{function} calls {action} on {resource}, but its policy in template.yaml does not grant it (AccessDenied in AWS)"
            ));
        }
        for (action, resource) in granted.difference(&called) {
            problems.push(format!(
                "{function} is granted {action} on {resource}, but the test suite never saw it call that: remove the grant, or add a test for the path that needs it"
            ));
        }
    }
    assert!(problems.is_empty(), "IAM policies and recorded calls disagree:\n  {}", problems.join("\n  "));
}

/// What can be checked without running anything: no Scan anywhere, indexes granted
/// by name, SES only on the sending identity, the Stripe secret exactly where the
/// code reads it, and the pipe's role limited to the stream.
#[test]
fn policies_are_least_privilege_where_the_template_alone_can_tell() {
    let t = template();
    let names = functions(&t);
    assert_eq!(names.len(), 11, "eleven functions: {names:?}");
    let mut problems = Vec::new();
    for function in &names {
        let f = &t["Resources"][function.as_str()]["Properties"];
        let grants = function_grants(&t, function);
        for (action, resource) in &grants {
            // A wildcard such as `dynamodb:*` or `dynamodb:Sca*` would grant Scan (or
            // anything else) without naming it, so no check below could see it.
            if action.contains('*') {
                problems.push(format!("{function} is granted the wildcard action {action}: name each action"));
            }
            match service_of(action) {
                "dynamodb" => {
                    if action == "dynamodb:Scan" {
                        problems.push(format!(
                            "{function} is granted dynamodb:Scan: no request path may scan the shared table"
                        ));
                    }
                    if resource == "index/*" {
                        problems.push(format!(
                            "{function} is granted {action} on every index: grant the indexes it queries by name"
                        ));
                    }
                    let known = resource == "table"
                        || resource.strip_prefix("index/").is_some_and(|i| ["GSI1", "GSI2", "GSI3"].contains(&i));
                    if !known {
                        problems
                            .push(format!("{function}: {action} on {resource}, not the table or one of its indexes"));
                    }
                    if resource.starts_with("index/") && action != "dynamodb:Query" {
                        problems.push(format!("{function}: {action} on {resource}; an index is only ever queried"));
                    }
                }
                "ses" => {
                    if action != "ses:SendEmail" || !["identity", "configuration-set"].contains(&resource.as_str()) {
                        problems.push(format!(
                            "{function}: {action} on {resource}; SES is SendEmail on the sending identity only"
                        ));
                    }
                }
                "secretsmanager" => {
                    if action != "secretsmanager:GetSecretValue" || resource != "secret" {
                        problems.push(format!(
                            "{function}: {action} on {resource}; only GetSecretValue on the Stripe secret"
                        ));
                    }
                }
                other => problems.push(format!("{function}: unexpected {other} grant {action} on {resource}")),
            }
        }
        // The Stripe secret: granted exactly where the environment names it and the
        // code reads the Stripe configuration (`StripeConfig::from_env`, or
        // `StripeGateway::from_env`, which reads it).
        let reads_secret_env = !f["Environment"]["Variables"]["STRIPE_SECRET_ARN"].is_null();
        let granted_secret = grants.iter().any(|(a, _)| a == "secretsmanager:GetSecretValue");
        let crate_dir = f["CodeUri"]
            .as_str()
            .and_then(|c| c.strip_prefix("functions/"))
            .map(|c| c.trim_end_matches('/').to_string())
            .unwrap_or_else(|| panic!("{function}: CodeUri is not functions/<crate>/"));
        let code_reads_stripe = crate_sources(&crate_dir)
            .iter()
            .any(|src| src.contains("StripeConfig::from_env") || src.contains("StripeGateway::from_env"));
        if reads_secret_env != code_reads_stripe || granted_secret != code_reads_stripe {
            problems.push(format!(
                "{function}: code reads the Stripe config: {code_reads_stripe}, STRIPE_SECRET_ARN in its environment: {reads_secret_env}, granted secretsmanager:GetSecretValue: {granted_secret}; all three must agree"
            ));
        }
    }
    // Roles outside the functions (the transitions pipe) only ever read the stream.
    for (name, resource) in t["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::IAM::Role") {
            continue;
        }
        let name = name.as_str().unwrap_or_default();
        for policy in resource["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for (action, res) in document_grants(&policy["PolicyDocument"]) {
                if service_of(&action) == "dynamodb" {
                    let stream_read = [
                        "dynamodb:DescribeStream",
                        "dynamodb:GetRecords",
                        "dynamodb:GetShardIterator",
                        "dynamodb:ListStreams",
                    ]
                    .contains(&action.as_str());
                    if !stream_read || res != "stream" {
                        problems.push(format!("{name}: {action} on {res}; the pipe only reads the table's stream"));
                    }
                }
            }
        }
    }
    // Nothing in the template grants Scan, in any form.
    assert!(!read_repo_file("template.yaml").contains("dynamodb:Scan"), "template.yaml grants dynamodb:Scan somewhere");
    assert!(problems.is_empty(), "IAM policy problems:\n  {}", problems.join("\n  "));
}

/// Every Rust source of a function crate.
fn crate_sources(crate_dir: &str) -> Vec<String> {
    let dir = tierdesk_tests::repo_root().join("functions").join(crate_dir).join("src");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| std::fs::read_to_string(e.path()).expect("read source"))
        .collect()
}

/// The recording itself: a call through the dev gateway is labelled with the
/// function's logical id, so what the suite records is per function.
#[tokio::test]
async fn the_gateway_runs_each_handler_under_its_functions_label() {
    use devtools::gateway::{Gateway, Handler};
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let mut handlers = std::collections::HashMap::new();
    for function in functions(&template()) {
        let seen = seen.clone();
        let handler: Handler = Arc::new(move |_req| {
            let seen = seen.clone();
            Box::pin(async move {
                seen.lock().unwrap().push(tierdesk::calls::current_function().map(|f| f.to_string()));
                lambda_http::Response::new(lambda_http::Body::Empty)
            })
        });
        handlers.insert(function, handler);
    }
    let routes = devtools::routes::from_template(&read_repo_file("template.yaml")).unwrap();
    let gateway = Gateway::new(routes, &handlers, "s".into()).unwrap();
    let call = |path: &str, method: &str| devtools::event::HttpCall {
        method: method.into(),
        path: path.into(),
        query: String::new(),
        headers: vec![],
        body: None,
    };
    gateway.call(call("/api/tiers", "GET")).await;
    gateway.call(call("/api/webhooks/stripe", "POST")).await;
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Some("TiersFunction".to_string()), Some("StripeWebhookFunction".to_string())]
    );
}
