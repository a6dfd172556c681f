//! Word lists for the corpus generator. Order matters: earlier words are more frequent
//! (they are drawn with a Zipf-like distribution over the list index).

/// Text vocabulary, most frequent first. The first few are the "common words" the
/// runner searches for: they appear in almost every file.
pub const WORDS: &[&str] = &[
    "data", "send", "report", "customer", "daily", "team", "update", "message", "summary", "new",
    "email", "check", "list", "order", "status", "sales", "create", "user", "request", "result",
    "each", "channel", "notify", "record", "when", "items", "fetch", "weekly", "lead", "account",
    "post", "ticket", "sheet", "format", "changes", "review", "invoice", "total", "alert", "error",
    "sync", "export", "import", "contacts", "tasks", "owner", "priority", "project", "payment", "draft",
    "filter", "score", "open", "closed", "pending", "approve", "reply", "schedule", "deal", "pipeline",
    "document", "file", "folder", "upload", "download", "backup", "notes", "comment", "mention", "issue",
    "release", "deploy", "build", "metrics", "dashboard", "usage", "cost", "budget", "forecast", "quarter",
    "region", "country", "language", "translate", "classify", "extract", "enrich", "merge", "dedupe", "clean",
    "validate", "normalize", "tag", "label", "route", "assign", "escalate", "remind", "follow", "survey",
    "feedback", "rating", "churn", "renewal", "trial", "signup", "onboarding", "welcome", "newsletter", "campaign",
    "audience", "segment", "subscriber", "unsubscribe", "bounce", "click", "visit", "session", "event", "webhook",
    "payload", "header", "token", "secret", "credential", "rotate", "expire", "refresh", "retry", "timeout",
    "queue", "batch", "stream", "window", "threshold", "anomaly", "spike", "drop", "trend", "compare",
    "baseline", "target", "goal", "progress", "milestone", "deadline", "calendar", "meeting", "agenda", "minutes",
    "transcript", "recording", "audio", "video", "image", "thumbnail", "caption", "prompt", "model", "answer",
    "question", "knowledge", "article", "support", "helpdesk", "agent", "shift", "handover", "incident", "outage",
    "postmortem", "oncall", "pager", "severity", "impact", "root", "cause", "fix", "patch", "rollback",
    "inventory", "stock", "warehouse", "shipment", "tracking", "carrier", "delivery", "return", "refund", "discount",
    "coupon", "price", "catalog", "product", "variant", "sku", "supplier", "purchase", "vendor", "contract",
    "legal", "compliance", "audit", "policy", "consent", "privacy", "gdpr", "retention", "archive", "purge",
    "employee", "hiring", "candidate", "interview", "offer", "payroll", "expense", "receipt", "reimburse", "travel",
    "booking", "hotel", "flight", "visa", "office", "desk", "equipment", "laptop", "license", "seat",
    "invoice_id", "amount", "currency", "tax", "ledger", "journal", "reconcile", "balance", "statement", "bank",
    "transfer", "wire", "card", "fraud", "risk", "limit", "approval", "manager", "director", "finance",
    "marketing", "engineering", "design", "product_team", "operations", "success", "partners", "community", "events", "social",
    "twitter", "linkedin", "youtube", "podcast", "blog", "seo", "keyword", "ranking", "backlink", "crawl",
    "scrape", "parse", "render", "template", "markdown", "html", "pdf", "csv", "json", "xml",
    "spreadsheet", "row", "column", "cell", "formula", "pivot", "chart", "graph", "map", "geocode",
    "weather", "forecasting", "temperature", "sensor", "device", "firmware", "reading", "telemetry", "battery", "signal",
    "gentle", "quick", "careful", "concise", "friendly", "formal", "short", "detailed", "clear", "polite",
    "morning", "evening", "monday", "friday", "month", "year", "today", "tomorrow", "yesterday", "hour",
    "vermilion", "lighthouse", "harbor", "meadow", "lantern", "orchard", "compass", "glacier", "falcon", "juniper",
];

/// The words the runner uses as "common word" queries (each in most files).
pub const COMMON_QUERY_WORDS: &[&str] = &["data", "send", "report", "customer", "daily", "team", "update", "message"];

/// Syllables for the synthetic long tail (project code names and the like) and for the
/// planted rare tokens.
pub const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ren", "tu", "vo", "sa", "bel", "dor", "fen", "gri", "hal", "jun", "kor", "lum", "mar",
    "nel", "pra", "quin", "ros", "sel", "tam", "ulv", "ven", "wis", "yor", "zan", "bri", "cla", "dru", "elm",
    "fal", "gor", "hin", "isk", "jal", "kel", "lin", "mor", "nor", "ost", "pel", "rak", "sto", "tir", "und",
];

pub const TAGS: &[&str] = &[
    "crm", "slack", "sales", "marketing", "email", "ai", "reporting", "support", "finance", "ops",
    "daily", "weekly", "alerts", "hr", "onboarding", "devops", "github", "notion", "sheets", "jira",
    "customer", "leads", "billing", "invoices", "monitoring", "social", "content", "seo", "analytics", "data",
    "etl", "backup", "security", "compliance", "legal", "recruiting", "payroll", "inventory", "shipping", "ecommerce",
    "shopify", "stripe", "hubspot", "salesforce", "zendesk", "intercom", "discord", "teams", "calendar", "meetings",
    "llm", "summarize", "translate", "classify", "scraping", "webhooks", "cron", "experimental", "deprecated", "template",
];

pub const AUTHORS: &[&str] = &[
    "alice@example.com", "bob@example.com", "Carla Mendes", "Dmitri Volkov", "José García", "田中 太郎",
    "Zoë Müller", "Priya Natarajan", "Ola Nordmann", "李 娜", "Émile Durand", "Sam O'Neil",
    "ops-bot", "marketing-team", "Fatima Zahra", "Kwame Mensah", "Ingrid Bergström", "Nguyễn Văn An",
];

pub const TEAMS: &[&str] = &[
    "sales", "marketing", "support", "engineering", "finance", "ops", "hr", "legal", "data", "growth",
    "R&D", "Ops & Infra", "customer success", "営業", "客户服务", "Équipe Paris",
];

pub const PROJECTS: &[&str] = &[
    "q3-planning", "Q4 launch", "onboarding", "renewals", "website", "mobile app", "billing-v2", "migration",
    "partner portal", "helpdesk", "newsletter", "events 2024", "hiring", "audit", "pricing", "emea",
    "apac", "north-america", "internal tools", "archive 2023", "50% off campaign", "beta_program", "Bob's stuff",
    "experiments", "misc",
];

pub const TOPICS: &[&str] = &[
    "alerts", "reports", "digests", "sync", "imports", "exports", "cleanup", "ai", "slack", "email",
    "crm", "sheets", "webhooks", "scheduled", "drafts", "old", "wip", "tests", "ideas", "café",
];

pub const TEMPLATE_CATEGORIES: &[&str] = &[
    "starter", "integrations", "ai", "notifications", "data pipelines", "examples", "community", "official",
];

pub const NAME_PREFIXES: &[&str] = &[
    "", "", "", "Daily", "Weekly", "Nightly", "Monthly", "Hourly", "Auto", "Quick", "Smart", "Simple",
    "New", "Legacy", "Team", "My",
];

pub const NAME_SUBJECTS: &[&str] = &[
    "sales", "lead", "invoice", "customer", "ticket", "order", "inventory", "payroll", "churn", "renewal",
    "signup", "incident", "deploy", "expense", "contract", "survey", "feedback", "newsletter", "meeting",
    "calendar", "github issue", "PR", "Slack", "Notion", "Stripe", "HubSpot", "Jira", "Zendesk", "RSS",
    "weather", "price", "stock", "SEO", "tweet", "podcast", "receipt", "candidate", "shipment", "refund",
];

pub const NAME_ACTIONS: &[&str] = &[
    "digest", "router", "sync", "reminder", "report", "alert", "backup", "triage", "summary", "enrichment",
    "notifier", "importer", "exporter", "cleanup", "tracker", "scorer", "translator", "classifier", "monitor",
    "bot", "pipeline", "handoff", "follow-up", "dashboard", "archiver",
];

pub const NAME_SUFFIXES: &[&str] = &[
    "", "", "", "", "", "", " v2", " (copy)", " — EU", " draft", " [old]", " 2024", " for managers", " test",
];

/// Awkward but valid names: unicode, emoji, punctuation that SQL LIKE, shells and URLs
/// treat specially.
pub const AWKWARD_NAMES: &[&str] = &[
    "東京タワー監視",
    "顧客フォローアップ",
    "毎日の売上レポート",
    "每日销售报告",
    "客户反馈汇总",
    "Café résumé parser",
    "Ünïcödé naïve sync",
    "Crème brûlée orders",
    "Łódź warehouse feed",
    "🚀 Launch checklist",
    "Deploy 🔥 alerts",
    "📈 KPI digest",
    "50% discount notifier",
    "100% uptime check",
    "snake_case_importer",
    "__init__ flow",
    "Bob's invoices",
    "O'Reilly feed",
    "R&D weekly sync",
    "Salt & Pepper orders",
    "Tom & Jerry's 50%_off_mix",
    "a",
    "x y  z",
    "name with    many   spaces",
    "Ολυμπία report",
    "Привет мир",
    "مرحبا workflow",
];

/// Short Japanese/Chinese sentences used in some descriptions and prompts.
pub const CJK_SENTENCES: &[&str] = &[
    "毎日の売上データを集計してSlackに送信する。",
    "新しい顧客からの問い合わせを分類して担当者に通知します。",
    "每周汇总客户反馈并发送邮件报告。",
    "自动同步库存数据到表格。",
    "東京オフィスの会議室予約をチェックする。",
];

pub const CHANNELS: &[&str] = &[
    "#sales", "#sales-digest", "#support", "#alerts", "#ops", "#general", "#marketing", "#eng-deploys",
    "#finance", "#random", "#leads", "#incidents",
];

pub const HOSTS: &[&str] = &[
    "api.example.com", "hooks.slack.com", "api.hubspot.com", "api.stripe.com", "api.github.com",
    "example.atlassian.net", "api.notion.com", "sheets.googleapis.com", "internal.acme.corp", "api.openai.com",
    "api.anthropic.com", "shop.example.jp", "crm.example.de",
];

pub const MODELS: &[&str] = &["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "claude-3-haiku", "llama-3-70b", "mistral-large"];

pub const TIMEZONES: &[&str] = &["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Asia/Shanghai", "Europe/Berlin", "America/Sao_Paulo"];

pub const NODE_TYPES: &[&str] = &[
    "http.request", "llm.prompt", "slack.post", "filter", "map", "schedule", "webhook.trigger", "email.send",
    "db.query", "code.js", "sheets.append", "if", "merge", "delay", "transform.json", "notion.create_page",
    "github.issue", "openai.embed", "s3.upload", "jira.create",
];
