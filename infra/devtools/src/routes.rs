//! The HTTP routes declared in `template.yaml`: for every function, each HttpApi
//! event's method, path and whether the JWT authorizer guards it.

use serde_yaml::Value;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TemplateRoute {
    pub function: String,
    pub method: String,
    pub path: String,
    pub public: bool,
}

pub fn from_template(template: &str) -> Result<Vec<TemplateRoute>, serde_yaml::Error> {
    let doc: Value = serde_yaml::from_str(template)?;
    let mut routes = Vec::new();
    let Some(resources) = doc["Resources"].as_mapping() else { return Ok(routes) };
    for (name, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
        for event in events.values() {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let props = &event["Properties"];
            if let (Some(method), Some(path)) = (props["Method"].as_str(), props["Path"].as_str()) {
                routes.push(TemplateRoute {
                    function: name.as_str().unwrap_or_default().to_string(),
                    method: method.to_uppercase(),
                    path: path.to_string(),
                    public: props["Auth"]["Authorizer"].as_str() == Some("NONE"),
                });
            }
        }
    }
    routes.sort();
    Ok(routes)
}
