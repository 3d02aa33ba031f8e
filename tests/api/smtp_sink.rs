//! A real SMTP server on loopback for the mail tests: it speaks the handful of commands a client
//! such as lettre sends (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT), accepts every
//! mail and hands it to the test, which decodes its MIME parts and follows the links in it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey::Config;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use crate::helpers::{TestApp, spawn_app_with};

/// How long a test waits for a mail it expects.
const MAIL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct SmtpSink {
    port: u16,
    mails: Mutex<mpsc::UnboundedReceiver<ReceivedMail>>,
    server: JoinHandle<()>,
}

/// One mail as the server received it.
#[derive(Debug, Default, Clone)]
pub struct ReceivedMail {
    /// The reverse path of `MAIL FROM`.
    pub mail_from: String,
    /// The forward paths of every `RCPT TO`.
    pub rcpt_to: Vec<String>,
    /// `user:password` when the client authenticated with AUTH PLAIN.
    pub auth: Option<String>,
    /// The message after dot-unstuffing, CRLF line ends, without the final `.` line.
    pub data: String,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_with_delay(Duration::ZERO).await
    }

    /// A server that waits `delay` before it accepts each mail's data, like a slow or distant
    /// relay: anything that delivers mail on the request path becomes that much slower.
    pub async fn start_with_delay(delay: Duration) -> Self {
        Self::start_with(delay, 0).await
    }

    /// A server that answers the first `refusals` mails with a transient error (451), as a
    /// relay that is overloaded or greylisting does: a sender must try again later.
    pub async fn start_refusing(refusals: usize) -> Self {
        Self::start_with(Duration::ZERO, refusals).await
    }

    async fn start_with(delay: Duration, refusals: usize) -> Self {
        let refusals = Arc::new(AtomicUsize::new(refusals));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tx, refusals) = (tx.clone(), refusals.clone());
                tokio::spawn(async move {
                    // A client that hangs up mid-conversation is simply gone.
                    let _ = converse(stream, tx, delay, &refusals).await;
                });
            }
        });
        Self {
            port,
            mails: Mutex::new(rx),
            server,
        }
    }

    /// Plain SMTP (no TLS) on loopback, as `LATCHKEY_SMTP_URL` takes it.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The next mail, waiting for it up to 10 s.
    pub async fn next_mail(&self) -> ReceivedMail {
        let mut mails = self.mails.lock().await;
        tokio::time::timeout(MAIL_TIMEOUT, mails.recv())
            .await
            .expect("no mail arrived within 10 s")
            .expect("the SMTP sink stopped")
    }

    /// Asserts that no mail arrives within `wait`.
    pub async fn assert_no_mail_within(&self, wait: Duration) {
        let mut mails = self.mails.lock().await;
        if let Ok(Some(mail)) = tokio::time::timeout(wait, mails.recv()).await {
            panic!("an unexpected mail arrived: {}", mail.data);
        }
    }
}

/// The application with its mail going to a fresh SMTP sink, and that sink.
pub async fn spawn_app_with_mail(customise: impl FnOnce(&mut Config)) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(|config| {
        config.mail.smtp_url = Some(url);
        customise(config);
    })
    .await;
    (app, sink)
}

async fn converse(
    stream: TcpStream,
    mails: mpsc::UnboundedSender<ReceivedMail>,
    delay: Duration,
    refusals: &AtomicUsize,
) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    writer.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut mail = ReceivedMail::default();
    let mut auth = None;
    loop {
        let Some(line) = read_line(&mut reader).await? else {
            return Ok(());
        };
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if upper.starts_with("AUTH PLAIN") {
            auth = Some(auth_plain(&line, &mut reader, &mut writer).await?);
            b"235 2.7.0 authenticated\r\n"
        } else if upper.starts_with("MAIL FROM:") && refuse(refusals) {
            b"451 4.3.0 try again later\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail = ReceivedMail {
                mail_from: path(&line),
                auth: auth.clone(),
                ..ReceivedMail::default()
            };
            b"250 2.1.0 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.rcpt_to.push(path(&line));
            b"250 2.1.5 ok\r\n"
        } else if upper == "DATA" {
            writer
                .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let Some(data) = read_data(&mut reader).await? else {
                return Ok(());
            };
            tokio::time::sleep(delay).await;
            mail.data = data;
            let _ = mails.send(std::mem::take(&mut mail));
            b"250 2.0.0 queued\r\n"
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 2.0.0 ok\r\n"
        } else if upper == "QUIT" {
            writer.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 5.5.1 command not implemented\r\n"
        };
        writer.write_all(reply).await?;
    }
}

/// Whether to refuse this mail: while refusals are left, taking one.
fn refuse(refusals: &AtomicUsize) -> bool {
    refusals
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok()
}

/// The `user:password` of an `AUTH PLAIN` command, whose credentials come on its line or, after a
/// 334, on the next.
async fn auth_plain(
    line: &str,
    reader: &mut BufReader<OwnedReadHalf>,
    writer: &mut OwnedWriteHalf,
) -> std::io::Result<String> {
    let initial = line[10..].trim().to_owned();
    let encoded = if initial.is_empty() {
        writer.write_all(b"334 \r\n").await?;
        read_line(reader).await?.unwrap_or_default()
    } else {
        initial
    };
    // `\0user\0password`.
    let decoded = STANDARD.decode(encoded.trim()).unwrap_or_default();
    let fields: Vec<String> = String::from_utf8_lossy(&decoded)
        .split('\0')
        .map(str::to_owned)
        .collect();
    Ok(fields[1..].join(":"))
}

/// The message after `DATA`, up to the line holding only a dot: dot-unstuffed, CRLF line ends.
/// `None` when the client hangs up first.
async fn read_data(reader: &mut BufReader<OwnedReadHalf>) -> std::io::Result<Option<String>> {
    let mut data = String::new();
    loop {
        let Some(line) = read_line(reader).await? else {
            return Ok(None);
        };
        if line == "." {
            return Ok(Some(data));
        }
        // RFC 5321 §4.5.2: the client doubled every leading dot.
        data.push_str(line.strip_prefix('.').unwrap_or(&line));
        data.push_str("\r\n");
    }
}

async fn read_line(reader: &mut BufReader<OwnedReadHalf>) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// `ada@example.com` from `RCPT TO:<ada@example.com> …`.
fn path(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_owned()
}

impl ReceivedMail {
    /// The value of a top-level header, unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        header_in(head, name)
    }

    /// The decoded body of the MIME part of type `content_type` (`text/plain`, `text/html`).
    pub fn part(&self, content_type: &str) -> String {
        let content_type_header = self
            .header("Content-Type")
            .expect("the mail has no Content-Type");
        let boundary = content_type_header
            .split("boundary=")
            .nth(1)
            .expect("the mail is not multipart")
            .trim_matches('"')
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        for part in self.data.split(&format!("--{boundary}")).skip(1) {
            let Some((head, body)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            let is_it = header_in(head, "Content-Type")
                .is_some_and(|value| value.to_ascii_lowercase().starts_with(content_type));
            if is_it {
                let encoding = header_in(head, "Content-Transfer-Encoding")
                    .unwrap_or_else(|| "7bit".into())
                    .to_ascii_lowercase();
                return decode(&encoding, body.trim_end_matches("\r\n"));
            }
        }
        panic!("the mail has no {content_type} part: {}", self.data);
    }

    /// The token of the first `…#token=TOKEN` link in the plain-text part.
    pub fn token(&self) -> String {
        token_in(&self.part("text/plain")).expect("no token link in the mail")
    }

    /// The first link of the plain-text part.
    pub fn link(&self) -> String {
        let text = self.part("text/plain");
        let start = text.find("http").expect("no link in the mail");
        text[start..].split_whitespace().next().unwrap().to_owned()
    }
}

pub fn token_in(text: &str) -> Option<String> {
    let start = text.find("#token=")? + "#token=".len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}

fn header_in(head: &str, name: &str) -> Option<String> {
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let prefix = format!("{}:", name.to_ascii_lowercase());
    unfolded
        .split("\r\n")
        .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
        .map(|line| line[prefix.len()..].trim().to_owned())
}

fn decode(encoding: &str, body: &str) -> String {
    match encoding {
        "base64" => {
            let compact: String = body.split_whitespace().collect();
            String::from_utf8(STANDARD.decode(compact).expect("bad base64 body")).unwrap()
        }
        "quoted-printable" => {
            let joined = body.replace("=\r\n", "");
            let bytes = joined.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                let escaped = (bytes[i] == b'=' && i + 2 < bytes.len())
                    .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
                    .flatten()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                if let Some(byte) = escaped {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(bytes[i]);
                i += 1;
            }
            String::from_utf8(out).unwrap()
        }
        _ => body.to_owned(),
    }
}
