// Words of the app in Chinese (first) and English, and the formats people read:
// yuan with fen precision, dates in Asia/Shanghai.

const zh = {
  title: "课时账本", family: "学生与家庭", pool: "公益课程池", audit: "消费者协会审计", institution: "机构",
  lang: "English", verified: "已在本机验证", unverified: "未通过验证", alarm: "警告",
  operatorKey: "运营方密钥指纹", firstUse: "首次访问：已记住此密钥，以后如有变化将发出警告。",
  checkpoint: "检查点", entries: "条记录", cosignedBy: "联署", cosigNotChecked: "未能核对（未知密钥）",
  waiting: "等待您确认的课时", noneWaiting: "目前没有等待您确认的课时。", daysLeft: "剩余 {n} 天确认或提出异议，逾期视为确认",
  deadlinePassed: "确认期已过，视为确认", confirm: "确认上课", dispute: "提出异议", decline: "放弃此分配",
  claims: "债权（机构欠课）", claim: "债权", institutionCol: "机构", lessons: "课时", value: "金额",
  madeGood: "已兑现", outstanding: "未兑现", allocations: "分配的课程", course: "课程", district: "区",
  lessonsLeft: "剩余课时", expires: "到期", history: "上课记录", status: "状态", when: "时间",
  proposed: "待确认", confirmed: "已确认", consumed: "已上课", deemed: "视为确认", disputed: "有异议", declined: "已放弃",
  expired: "已过期", active: "有效", verifyTime: "验证用时 {ms} 毫秒（{n} 条记录）",
  keyTitle: "我的密钥", noKey: "本设备上还没有密钥。", createKey: "在本设备上创建密钥", importKey: "导入密钥文件（PKCS#8）",
  backup: "下载备份", vkeyHint: "请将此验证密钥交给运营方登记：", keyName: "名称（学生编号）",
  sent: "已提交并验证回执：第 {i} 条", reason: "原因", sending: "正在签名并提交…",
  alarm_operator_key_changed: "运营方密钥与您上次访问时不同！",
  alarm_history_rewritten: "账本历史被改写：与您上次看到的记录不一致！",
  alarm_proof_value_mismatch: "服务器给出的记录与运营方签名的账本状态不符！",
  alarm_proof_root_mismatch: "状态证明与运营方签名的账本状态不符！",
  alarm_state_note_invalid: "账本状态的签名无效！",
  alarm_open_lessons_mismatch: "有等待您确认的课时未在本页显示！",
  alarm_generic: "验证失败：{code}", figureMismatch: "服务器给出的数字与已验证记录不一致",
  notFound: "没有找到此学生。", home: "输入学生编号查看：", open: "查看",
  pledged: "已认捐", reserved: "已预留", delivered: "已交付", byDistrict: "各区：欠课与已兑现",
  bySubject: "按科目", liabilities: "各机构欠课（审计核实）", owed: "欠课", coverage: "覆盖率", students: "学生",
  auditRun: "在浏览器中审计整个账本", auditDone: "审计通过：{n} 条记录，{s} 签名/秒", auditFail: "审计失败：{e}",
  checkpoints: "检查点与联署", liability: "负债报告", downloadCsv: "下载 CSV",
  allocationId: "分配编号", lessonId: "课时编号", propose: "提交已上课时（待家庭确认）", proposeTitle: "提交已上的课",
  cosign: "以协会密钥联署此检查点", cosigned: "已联署检查点（{n} 条记录），服务器返回的检查点已验证", association: "协会编号",
  servedTotal: "服务器汇总的数字（审计后核对）", pledges: "认捐的课程", noPledges: "暂无认捐课程。", pledge: "认捐编号",
  valuePerLesson: "每课时金额", available: "可分配", grades: "{a}–{b} 年级", awaitingApproval: "待批准", online: "线上",
  toDeliver: "待交付的分配", nothingToDeliver: "目前没有待交付的课时。", badAmount: "金额格式不正确（元，最多两位小数）",
  pledgeTitle: "认捐一门课程", gradeMin: "最低年级", gradeMax: "最高年级", seats: "名额", lessonsPerSeat: "每名额课时",
  valuePerLessonYuan: "每课时金额（元）", validDays: "有效天数", pledgeSubmit: "签名并认捐",
  checkpointHistory: "检查点历史与联署", noCosignature: "无联署", moreCheckpoints: "更多检查点", treeSize: "记录数", root: "根哈希",
  disputes: "有异议的课时", resolution: "处理结果", awaitingResolution: "等待运营方处理",
  lesson_proposed: "待确认", lesson_confirmed: "已确认", lesson_disputed: "异议处理中", lesson_void: "已作废（课时退回）", lesson_final: "维持（已上课）",
  void: "已作废", final: "已上课",
  reason_not_taught: "未上课", reason_not_attended: "学生未出席", reason_wrong_course: "课程不符", reason_duplicate: "重复记录", reason_quality: "质量问题",
  outcome_upheld: "异议成立", outcome_rejected: "异议不成立",
  resolution_delivery_not_proven: "机构未能证明已上课", resolution_delivery_proven: "机构证明已上课", resolution_dispute_withdrawn: "异议已撤回",
  choices: "选择兑换的课程", choicesHint: "按喜好排列可接受的科目，选择可接受的区和线上课程，并可申请最多 5 门课程。由您的密钥签名。",
  noPreferences: "尚未设定偏好：按原科目匹配。", rankedSubjects: "可接受的科目（按喜好排序）", acceptedDistricts: "可接受的区", yes: "是", no: "否",
  requests: "申请的课程", rank: "第 {n} 选择", acceptedDistrictsBesides: "除 {d} 外还可接受的区", acceptsOnline: "接受线上课程",
  findCourses: "查找合适的课程", sendPreferences: "签名并提交选择", noCourses: "没有符合条件的课程。", request: "申请", seatsLeft: "剩余名额",
};

const en = {
  title: "Lesson Ledger", family: "Students and families", pool: "Course pool", audit: "Association audit", institution: "Institution",
  lang: "中文", verified: "verified in this browser", unverified: "NOT verified", alarm: "Alarm",
  operatorKey: "Operator key fingerprint", firstUse: "First visit: this key is now pinned; a different key later raises an alarm.",
  checkpoint: "Checkpoint", entries: "entries", cosignedBy: "co-signed by", cosigNotChecked: "not checked (unknown key)",
  waiting: "Lessons waiting for you", noneWaiting: "No lesson is waiting for you.", daysLeft: "{n} days left to confirm or dispute, then deemed confirmed",
  deadlinePassed: "window over: deemed confirmed", confirm: "Confirm lesson", dispute: "Dispute", decline: "Decline this allocation",
  claims: "Claims (lessons owed)", claim: "Claim", institutionCol: "Institution", lessons: "Lessons", value: "Value",
  madeGood: "Made good", outstanding: "Outstanding", allocations: "Allocated courses", course: "Course", district: "District",
  lessonsLeft: "Lessons left", expires: "Expires", history: "Lesson history", status: "Status", when: "When",
  proposed: "to confirm", confirmed: "confirmed", consumed: "held", deemed: "deemed confirmed", disputed: "disputed", declined: "declined",
  expired: "expired", active: "active", verifyTime: "verified in {ms} ms ({n} entries)",
  keyTitle: "My key", noKey: "No key on this device yet.", createKey: "Create a key on this device", importKey: "Import a key file (PKCS#8)",
  backup: "Download a backup", vkeyHint: "Give this verifier key to the operator for registration:", keyName: "Name (student id)",
  sent: "Submitted, receipt verified: entry {i}", reason: "Reason", sending: "Signing and submitting…",
  alarm_operator_key_changed: "The operator key differs from the one pinned on your first visit!",
  alarm_history_rewritten: "The ledger's history was rewritten: it does not extend what you saw last time!",
  alarm_proof_value_mismatch: "A record served differs from the ledger state the operator signed!",
  alarm_proof_root_mismatch: "A state proof does not lead to the ledger state the operator signed!",
  alarm_state_note_invalid: "The signature on the ledger state is invalid!",
  alarm_open_lessons_mismatch: "A lesson waiting on you is missing from this page!",
  alarm_generic: "Verification failed: {code}", figureMismatch: "the server's figure disagrees with the verified entries",
  notFound: "No such student.", home: "Enter a student id:", open: "Open",
  pledged: "pledged", reserved: "reserved", delivered: "delivered", byDistrict: "By district: owed and made good",
  bySubject: "By subject", liabilities: "Liabilities by institution (from the audit)", owed: "owed", coverage: "coverage", students: "students",
  auditRun: "Audit the whole ledger in this browser", auditDone: "Audit passed: {n} entries, {s} signatures/s", auditFail: "Audit failed: {e}",
  checkpoints: "Checkpoints and cosignatures", liability: "Liability report", downloadCsv: "Download CSV",
  allocationId: "Allocation", lessonId: "Lesson", propose: "Propose a delivered lesson (the family confirms)", proposeTitle: "Propose a delivered lesson",
  cosign: "Cosign this checkpoint with the association's key", cosigned: "Checkpoint of {n} entries cosigned; the checkpoint served back verifies", association: "Association",
  servedTotal: "a total the server sums (checked by the audit)", pledges: "Pledged courses", noPledges: "No pledged course yet.", pledge: "Pledge",
  valuePerLesson: "Value per lesson", available: "available", grades: "grades {a}–{b}", awaitingApproval: "awaiting approval", online: "online",
  toDeliver: "Allocations to deliver", nothingToDeliver: "No lesson to deliver now.", badAmount: "Not an amount (yuan, at most two decimals)",
  pledgeTitle: "Pledge a course", gradeMin: "Lowest grade", gradeMax: "Highest grade", seats: "Seats", lessonsPerSeat: "Lessons per seat",
  valuePerLessonYuan: "Value per lesson (yuan)", validDays: "Valid for (days)", pledgeSubmit: "Sign and pledge",
  checkpointHistory: "Checkpoint history and cosignatures", noCosignature: "no cosignature", moreCheckpoints: "More checkpoints", treeSize: "Entries", root: "Root",
  disputes: "Disputed lessons", resolution: "Resolution", awaitingResolution: "awaiting the operator's decision",
  lesson_proposed: "to confirm", lesson_confirmed: "confirmed", lesson_disputed: "dispute open", lesson_void: "void (lesson returned)", lesson_final: "stands (held)",
  void: "void", final: "held",
  reason_not_taught: "not taught", reason_not_attended: "not attended", reason_wrong_course: "wrong course", reason_duplicate: "duplicate", reason_quality: "quality",
  outcome_upheld: "dispute upheld", outcome_rejected: "dispute rejected",
  resolution_delivery_not_proven: "delivery not proven", resolution_delivery_proven: "delivery proven", resolution_dispute_withdrawn: "dispute withdrawn",
  choices: "Choose the courses you redeem", choicesHint: "Rank the subjects you accept, choose districts and online courses, and request up to 5 courses. Signed with your key.",
  noPreferences: "No choices set: matched on the claim's own subject.", rankedSubjects: "Accepted subjects, most wanted first", acceptedDistricts: "Accepted districts", yes: "yes", no: "no",
  requests: "Requested courses", rank: "choice {n}", acceptedDistrictsBesides: "Districts accepted besides {d}", acceptsOnline: "Accept online courses",
  findCourses: "Find courses that fit", sendPreferences: "Sign and send my choices", noCourses: "No course fits.", request: "Request", seatsLeft: "Seats left",
};

const tables = { zh, en };

export function lang() {
  const saved = localStorage.getItem("ll.lang");
  return saved === "en" ? "en" : "zh";
}

export function setLang(value) {
  localStorage.setItem("ll.lang", value);
}

/** The phrase `key` in the current language, with `{name}` placeholders filled. */
export function t(key, vars = {}) {
  const text = tables[lang()][key] ?? tables.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k]));
}

/** Fen as yuan with fen precision: ¥1,234.56. */
export function yuan(fen) {
  const n = BigInt(fen);
  const sign = n < 0n ? "-" : "";
  const a = n < 0n ? -n : n;
  const whole = (a / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${sign}¥${whole}.${(a % 100n).toString().padStart(2, "0")}`;
}

/** Ledger time (µs since the epoch) as a date and time in Shanghai. */
export function when(micros) {
  const d = new Date(Number(BigInt(micros) / 1000n));
  return new Intl.DateTimeFormat(lang() === "zh" ? "zh-CN" : "en-GB", {
    timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  }).format(d);
}
