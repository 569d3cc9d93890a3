//! The deployed-stack paths against a fake AWS endpoint (CloudFormation's
//! query protocol, SQS's JSON protocol): there is no account here, and the
//! local cloud (moto) has no message-move tasks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::*;

const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";

/// What the fake answers, and what it was asked.
#[derive(Default)]
struct Fake {
    /// Every SQS operation with its request body, in order.
    sqs_calls: Mutex<Vec<(String, Value)>>,
    /// DescribeStacks's outputs (key, value).
    outputs: Vec<(String, String)>,
    /// Depths by queue URL: (visible, in flight, delayed).
    depths: BTreeMap<String, (u64, u64, u64)>,
    /// ReceiveMessage's answers, in turn (then empty).
    received: Mutex<VecDeque<Value>>,
    /// ListMessageMoveTasks's answers, in turn (the last one repeats; null: no task).
    move_tasks: Mutex<VecDeque<Value>>,
}

impl Fake {
    fn answer(&self, target: Option<&str>, body: &[u8]) -> (u16, &'static str, String) {
        let Some(operation) = target.and_then(|t| t.strip_prefix("AmazonSQS.")) else {
            return self.cloudformation(&String::from_utf8_lossy(body));
        };
        let request: Value = serde_json::from_slice(body).unwrap();
        self.sqs_calls.lock().unwrap().push((operation.to_owned(), request.clone()));
        let answer = match operation {
            "GetQueueAttributes" => {
                let url = request["QueueUrl"].as_str().unwrap();
                let name = url.rsplit('/').next().unwrap();
                let (visible, in_flight, delayed) = self.depths.get(url).copied().unwrap_or_default();
                json!({"Attributes": {
                    "QueueArn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"),
                    "ApproximateNumberOfMessages": visible.to_string(),
                    "ApproximateNumberOfMessagesNotVisible": in_flight.to_string(),
                    "ApproximateNumberOfMessagesDelayed": delayed.to_string(),
                }})
            }
            "ReceiveMessage" => {
                let messages = self.received.lock().unwrap().pop_front().unwrap_or_else(|| json!([]));
                json!({ "Messages": messages })
            }
            "ChangeMessageVisibility" => json!({}),
            "StartMessageMoveTask" => json!({"TaskHandle": "handle-1"}),
            "ListMessageMoveTasks" => {
                let mut tasks = self.move_tasks.lock().unwrap();
                let task = if tasks.len() > 1 { tasks.pop_front() } else { tasks.front().cloned() };
                json!({ "Results": task.into_iter().filter(|t| !t.is_null()).collect::<Vec<_>>() })
            }
            other => {
                return (
                    400,
                    "application/x-amz-json-1.0",
                    format!(r#"{{"__type":"UnknownOperation","message":"{other}"}}"#),
                );
            }
        };
        (200, "application/x-amz-json-1.0", answer.to_string())
    }

    fn cloudformation(&self, form: &str) -> (u16, &'static str, String) {
        assert!(form.contains("Action=DescribeStacks"), "{form}");
        if !form.contains("StackName=shop-dev") {
            let error = "<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code>\
                             <Message>Stack with id shop-nope does not exist</Message></Error>\
                             <RequestId>r</RequestId></ErrorResponse>";
            return (400, "text/xml", error.to_owned());
        }
        let outputs: String = self
            .outputs
            .iter()
            .map(|(key, value)| {
                format!("<member><OutputKey>{key}</OutputKey><OutputValue>{value}</OutputValue></member>")
            })
            .collect();
        let xml = format!(
            "<DescribeStacksResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><DescribeStacksResult>\
                 <Stacks><member><StackName>shop-dev</StackName><StackId>arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/shop-dev/1</StackId>\
                 <CreationTime>2026-11-01T10:00:00Z</CreationTime><StackStatus>UPDATE_COMPLETE</StackStatus>\
                 <Outputs>{outputs}</Outputs></member></Stacks></DescribeStacksResult>\
                 <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeStacksResponse>"
        );
        (200, "text/xml", xml)
    }

    fn calls(&self, operation: &str) -> Vec<Value> {
        let calls = self.sqs_calls.lock().unwrap();
        calls.iter().filter(|(op, _)| op == operation).map(|(_, body)| body.clone()).collect()
    }
}

/// Serves `fake` on a free local port; its URL.
async fn serve(fake: Arc<Fake>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let fake = fake.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let fake = fake.clone();
                    async move {
                        let target =
                            request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::to_owned);
                        let body = request.into_body().collect().await?.to_bytes();
                        let (status, content_type, text) = fake.answer(target.as_deref(), &body);
                        Ok::<_, hyper::Error>(
                            http::Response::builder()
                                .status(status)
                                .header("content-type", content_type)
                                .body(Full::new(Bytes::from(text)))
                                .unwrap(),
                        )
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    url
}

fn sqs(url: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version_latest()
        .endpoint_url(url)
        .region(aws_sdk_sqs::config::Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

fn cloudformation(url: &str) -> aws_sdk_cloudformation::Client {
    let config = aws_sdk_cloudformation::Config::builder()
        .behavior_version_latest()
        .endpoint_url(url)
        .region(aws_sdk_cloudformation::config::Region::new(REGION))
        .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .build();
    aws_sdk_cloudformation::Client::from_conf(config)
}

fn queue_url(name: &str) -> String {
    format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/shop-dev-{name}")
}

/// Outputs as template.yaml declares them, for every queue it names.
fn stack_outputs(names: &[String]) -> Vec<(String, String)> {
    let mut outputs = vec![("ApiUrl".to_owned(), "https://example.execute-api.eu-west-1.amazonaws.com/v1".to_owned())];
    for name in names {
        let pascal = pascal_case(name);
        outputs.push((format!("{pascal}QueueUrl"), queue_url(&format!("{pascal}Queue"))));
        outputs.push((format!("{pascal}DeadLetterQueueUrl"), queue_url(&format!("{pascal}DeadLetterQueue"))));
    }
    outputs
}

fn text(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap()
}

#[test]
fn queue_names_read_as_cloudformation_names_them() {
    assert_eq!(pascal_case("order-placed"), "OrderPlaced");
    assert_eq!(pascal_case("email-send"), "EmailSend");
    assert_eq!(age(41_000), "41s");
    assert_eq!(age(192_000), "3m 12s");
    assert_eq!(age(7_500_000), "2h 05m");
    assert_eq!(age(3 * 86_400_000 + 4 * 3_600_000), "3d 04h");
}

#[test]
fn the_template_declares_the_outputs_dlq_stack_reads() {
    let template = local_cloud::template::Template::load_project().unwrap();
    let outputs = template.root.body["Outputs"].as_mapping().expect("template.yaml has Outputs");
    for name in queue_names().unwrap() {
        for suffix in ["QueueUrl", "DeadLetterQueueUrl"] {
            let key = format!("{}{suffix}", pascal_case(&name));
            assert!(outputs.contains_key(key.as_str()), "template.yaml's Outputs lack {key} (for `dlq --stack`)");
        }
    }
}

#[tokio::test]
async fn a_deployed_stack_s_queues_come_from_its_outputs() {
    let names = queue_names().unwrap();
    assert!(names.contains(&"order-placed".to_owned()), "{names:?}");
    let fake = Arc::new(Fake { outputs: stack_outputs(&names), ..Fake::default() });
    let url = serve(fake).await;
    let queues = queues_from_stack(&cloudformation(&url), "shop-dev", &names).await.unwrap();
    let order_placed = queues.iter().find(|pair| pair.name == "order-placed").unwrap();
    assert_eq!(order_placed.queue_url, queue_url("OrderPlacedQueue"));
    assert_eq!(order_placed.dlq_url, queue_url("OrderPlacedDeadLetterQueue"));
    assert_eq!(queues.len(), names.len());

    let missing = queues_from_stack(&cloudformation(&url), "shop-nope", &names).await.unwrap_err().to_string();
    assert!(missing.contains("could not describe stack shop-nope") && missing.contains("does not exist"), "{missing}");
}

#[tokio::test]
async fn a_stack_without_the_queue_outputs_is_named_with_what_it_has() {
    let names = vec!["order-placed".to_owned()];
    let outputs = vec![("OrderPlacedQueueUrl".to_owned(), queue_url("OrderPlacedQueue"))];
    let url = serve(Arc::new(Fake { outputs, ..Fake::default() })).await;
    let error = queues_from_stack(&cloudformation(&url), "shop-dev", &names).await.unwrap_err().to_string();
    assert!(error.contains("no output OrderPlacedDeadLetterQueueUrl (its outputs: OrderPlacedQueueUrl)"), "{error}");
}

#[tokio::test]
async fn list_shows_depths_reasons_and_a_running_move_task() {
    let names = ["order-placed".to_owned(), "email-send".to_owned()];
    let queues: Vec<QueuePair> = names
        .iter()
        .map(|name| {
            let pascal = pascal_case(name);
            QueuePair {
                name: name.clone(),
                queue_url: queue_url(&format!("{pascal}Queue")),
                dlq_url: queue_url(&format!("{pascal}DeadLetterQueue")),
            }
        })
        .collect();
    let now_ms = 1_800_000_000_000;
    let letter = |id: &str, reason: Option<&str>, age_ms: i64| {
        let mut message = json!({
            "MessageId": id, "ReceiptHandle": format!("rh-{id}"), "Body": "{}",
            "Attributes": {"SentTimestamp": (now_ms - age_ms).to_string()},
        });
        if let Some(reason) = reason {
            message["MessageAttributes"] = json!({"dead_letter_reason": {"DataType": "String", "StringValue": reason}});
        }
        message
    };
    let fake = Arc::new(Fake {
        depths: BTreeMap::from([
            (queues[0].queue_url.clone(), (12, 3, 0)),
            (queues[0].dlq_url.clone(), (3, 0, 0)),
            (queues[1].queue_url.clone(), (0, 0, 1)),
        ]),
        received: Mutex::new(VecDeque::from([json!([
            letter("m-1", Some("invalid event: missing field `data`"), 192_000),
            letter("m-2", Some("invalid event: missing field `data`"), 41_000),
            letter("m-3", None, 7_500_000),
        ])])),
        // order-placed's dead letters are on their way back; email-send never had a redrive.
        move_tasks: Mutex::new(VecDeque::from([
            json!({
                "Status": "RUNNING", "TaskHandle": "handle-1", "SourceArn": "arn", "StartedTimestamp": 1,
                "ApproximateNumberOfMessagesMoved": 1, "ApproximateNumberOfMessagesToMove": 3,
            }),
            Value::Null,
        ])),
        ..Fake::default()
    });
    let url = serve(fake.clone()).await;
    let target = Target { sqs: sqs(&url), queues, deployed: true };
    let mut out = Vec::new();
    list(&target, &ListOptions { peek: 100, messages: false, now_ms }, &mut out).await.unwrap();
    assert_eq!(
        text(out),
        "queue         waiting  in flight  delayed  dead letters  oldest dead letter\n\
             order-placed       12          3        0             3  2h 05m\n\
             email-send          0          0        1             0  -\n\
             \n\
             order-placed: redrive running (1 moved of 3)\n\
             \n\
             order-placed: 3 dead letter(s)\n      \
             2  invalid event: missing field `data`\n      \
             1  (no reason: SQS moved it after repeated failed receives)\n"
    );
    // Read with a long poll (a short one may miss messages), put back at once.
    let receives = fake.calls("ReceiveMessage");
    assert_eq!(receives.len(), 2, "one batch, then an empty answer");
    assert_eq!(receives[0]["WaitTimeSeconds"], 1);
    let returned: Vec<Value> = fake
        .calls("ChangeMessageVisibility")
        .into_iter()
        .filter(|c| c["VisibilityTimeout"] == 0)
        .map(|c| c["ReceiptHandle"].clone())
        .collect();
    assert_eq!(returned, ["rh-m-1", "rh-m-2", "rh-m-3"]);
    assert!(fake.calls("ReceiveMessage").iter().all(|c| c["QueueUrl"] == target.queues[0].dlq_url));

    let mut out = Vec::new();
    fake.received.lock().unwrap().push_back(json!([letter("m-9", Some("poison"), 5_000)]));
    list(&target, &ListOptions { peek: 100, messages: true, now_ms }, &mut out).await.unwrap();
    assert!(text(out).ends_with("order-placed: 3 dead letter(s) (reasons of the 1 read)\n  m-9       5s  poison\n"));
}

#[tokio::test]
async fn redrive_starts_sqs_s_move_task_from_the_dlq_to_its_queue_and_reports_progress() {
    let task = |status: &str, started: i64, moved: i64| {
        json!({"Status": status, "SourceArn": "arn", "StartedTimestamp": started,
                   "ApproximateNumberOfMessagesMoved": moved, "ApproximateNumberOfMessagesToMove": 40})
    };
    let fake = Arc::new(Fake {
        move_tasks: Mutex::new(VecDeque::from([
            task("COMPLETED", 100, 7), // an earlier redrive, listed before ours starts
            task("COMPLETED", 100, 7), // ours not listed yet
            task("RUNNING", 200, 0),
            task("RUNNING", 200, 25),
            task("RUNNING", 200, 25),
            task("COMPLETED", 200, 40),
        ])),
        ..Fake::default()
    });
    let url = serve(fake.clone()).await;
    let pair = QueuePair {
        name: "order-placed".into(),
        queue_url: queue_url("OrderPlacedQueue"),
        dlq_url: queue_url("OrderPlacedDeadLetterQueue"),
    };
    let options = MoveOptions { wait: true, rate: Some(50), poll: Duration::from_millis(1) };
    let mut out = Vec::new();
    redrive_with_move_task(&sqs(&url), &pair, &options, &mut out).await.unwrap();
    let started = fake.calls("StartMessageMoveTask");
    assert_eq!(
        started,
        [json!({
            "SourceArn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:shop-dev-OrderPlacedDeadLetterQueue"),
            "DestinationArn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:shop-dev-OrderPlacedQueue"),
            "MaxNumberOfMessagesPerSecond": 50,
        })]
    );
    assert_eq!(
        text(out),
        format!(
            "order-placed: SQS is moving the dead letters of arn:aws:sqs:{REGION}:{ACCOUNT}:shop-dev-OrderPlacedDeadLetterQueue \
                 back to arn:aws:sqs:{REGION}:{ACCOUNT}:shop-dev-OrderPlacedQueue\n\
                 order-placed: running (0 moved of 40)\n\
                 order-placed: running (25 moved of 40)\n\
                 order-placed: completed (40 moved of 40)\n"
        )
    );
}

#[tokio::test]
async fn a_failed_move_task_fails_the_command_with_its_reason() {
    let fake = Arc::new(Fake {
        move_tasks: Mutex::new(VecDeque::from([
            Value::Null, // no redrive before this one
            json!({
                "Status": "FAILED", "SourceArn": "arn", "StartedTimestamp": 300,
                "ApproximateNumberOfMessagesMoved": 2, "FailureReason": "AWS.SimpleQueueService.NonExistentQueue",
            }),
        ])),
        ..Fake::default()
    });
    let url = serve(fake).await;
    let pair = QueuePair { name: "email-send".into(), queue_url: queue_url("A"), dlq_url: queue_url("B") };
    let options = MoveOptions { wait: true, rate: None, poll: Duration::from_millis(1) };
    let error = redrive_with_move_task(&sqs(&url), &pair, &options, &mut Vec::new()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "email-send: the move task ended failed (2 moved): AWS.SimpleQueueService.NonExistentQueue"
    );
}
