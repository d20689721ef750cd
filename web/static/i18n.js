// i18n.js: the console's two dictionaries (zh-CN first, English) and the
// language choice, kept in localStorage["uw_lang"] and the uw_lang cookie.

const zh = {
  'app.title': '城市管理 · 渣土车监管与防汛',
  'app.short': '城管监管',
  'nav.inspect': '巡查地图', 'nav.alerts': '告警', 'nav.flood': '防汛', 'nav.report': '报表',
  'lang.other': 'English', 'lang.label': '语言',
  'logout': '退出', 'loading': '加载中…', 'error': '出错了', 'retry': '重试',
  'role.admin': '管理员', 'role.inspection': '巡查', 'role.duty': '防汛值班', 'role.company': '运输企业',
  'live.on': '实时', 'live.off': '连接中断，重连中…', 'live.connecting': '连接中…',
  'login.title': '登录', 'login.user': '用户名', 'login.pass': '密码', 'login.submit': '登录',
  'login.busy': '正在登录…', 'login.locked': '登录失败次数过多，已暂时锁定。请 {m} 分钟后再试。',
  'login.wrong': '用户名或密码错误。', 'login.forbidden': '登录被拒绝。', 'login.failed': '登录失败，请稍后再试。',
  'login.network': '无法连接服务器，请检查网络。', 'login.hint': '仅限授权人员使用。所有操作都会留痕。',
  'login.missing': '请输入用户名和密码。',
  'err.401': '登录已过期，请重新登录。', 'err.403': '无权执行此操作。', 'err.404': '未找到（或不在您的权限范围内）。',
  'err.409': '当前状态不允许此操作，可能已被他人处理。', 'err.429': '请求过于频繁，请稍后再试。', 'err.network': '网络错误，请重试。',
  'state.empty': '空车', 'state.loaded': '重车', 'state.cover_open': '未密闭', 'state.alerting': '告警',
  'state.offline': '离线', 'state.unknown': '未上线',
  'sev.critical': '严重', 'sev.major': '较重', 'sev.warning': '一般', 'sev.minor': '轻微',
  'ast.firing': '告警中', 'ast.acknowledged': '已确认', 'ast.resolved': '已解除', 'ast.active': '未解除（告警中+已确认）',
  'out.warned': '批评教育', 'out.fined': '罚款', 'out.permit_suspended': '暂停准运', 'out.false_alarm': '误报', 'out.none': '未处置',
  'rule.uncovered_load': '未密闭运输', 'rule.off_route': '偏离路线', 'rule.illegal_dumping': '违规倾倒',
  'rule.outside_permit_hours': '超时段运输', 'rule.no_permit': '无证运输', 'rule.signal_lost': '信号中断',
  'rule.zone_violation': '管控区违规', 'rule.rainstorm': '暴雨预警', 'rule.heavy_rain_1h': '短时强降水',
  'rule.waterlogging': '内涝积水', 'rule.sensor_offline': '设备离线',
  'rule.overload': '超量装载', 'rule.unwashed_exit': '带泥上路', 'rule.spillage': '道路抛洒',
  'rain.none': '无', 'rain.blue': '蓝色', 'rain.yellow': '黄色', 'rain.orange': '橙色', 'rain.red': '红色',
  'depth.none': '正常', 'depth.warning': '积水预警', 'depth.road_closure': '道路封闭',
  'cover.closed': '已密闭', 'cover.open': '未密闭', 'cover.fault': '故障', 'cover.unknown': '未知',
  'body.down': '落下', 'body.raised': '举升', 'body.unknown': '未知',
  'kind.truck': '渣土车', 'kind.gauge': '雨量/积水', 'kind.all': '全部',
  'site.construction': '工地', 'site.disposal': '消纳场', 'route': '准运路线', 'district': '辖区',
  'tier': '已升级 {n} 级', 'escalated': '已升级',
  // inspect
  'inspect.title': '夜间巡查', 'inspect.alerts': '未解除的渣土车告警', 'inspect.noalerts': '当前没有未解除的告警。',
  'inspect.near': '按距离排序（使用我的位置）', 'inspect.near.on': '按距离排序中', 'inspect.near.off': '按严重程度排序',
  'inspect.geo.denied': '无法获取位置：{e}', 'inspect.geo.busy': '正在获取位置…',
  'inspect.legend': '车辆状态', 'inspect.total': '共 {n} 辆', 'inspect.details': '查看车辆详情',
  'inspect.find': '查找车牌', 'inspect.notfound': '没有找到该车辆。', 'inspect.trucks': '车辆',
  'map.layers': '图层',
  // truck
  'truck.title': '车辆', 'truck.company': '运输企业', 'truck.state': '状态', 'truck.speed': '速度', 'truck.time': '定位时间',
  'truck.sensors': '传感器（当前）', 'truck.cover': '篷布', 'truck.body': '车厢', 'truck.load': '载重', 'truck.sensors_ts': '传感器时间',
  'truck.permit': '准运证', 'truck.nopermit': '没有有效的准运证。', 'truck.permit.id': '编号', 'truck.permit.valid': '有效期',
  'truck.permit.windows': '准运时段', 'truck.permit.in_force': '证件有效', 'truck.permit.window_open': '当前在准运时段内',
  'truck.permit.origins': '出土工地', 'truck.permit.disposal': '消纳场', 'truck.permit.routes': '路线', 'truck.permit.corridor': '路线走廊宽度',
  'truck.track': '最近 30 分钟轨迹', 'truck.notrack': '最近 30 分钟没有轨迹。', 'truck.alerts': '该车告警', 'truck.noalerts': '该车没有告警。',
  'truck.device': '终端', 'truck.position': '位置', 'truck.heading': '方向',
  'yes': '是', 'no': '否',
  // alerts
  'alerts.title': '告警队列', 'alerts.state': '状态', 'alerts.kind': '类型', 'alerts.none': '没有符合条件的告警。',
  'alerts.count': '共 {n} 条', 'alerts.shown': '显示 {n} 条', 'col.severity': '级别', 'col.rule': '规则', 'col.subject': '对象',
  'col.district': '辖区', 'col.started': '开始时间', 'col.state': '状态', 'col.tier': '升级', 'col.outcome': '处置结果',
  'col.distance': '距离', 'col.company': '企业',
  // alert
  'alert.title': '告警详情', 'alert.summary': '概要', 'alert.details': '测量值与阈值', 'alert.history': '处理记录',
  'alert.notifications': '通知', 'alert.cap': 'CAP 预警消息', 'alert.actions': '处置', 'alert.ack': '确认告警',
  'alert.ack.note': '确认备注（可选）', 'alert.note': '备注', 'alert.note.ph': '输入备注：现场情况、处理结果…',
  'alert.addnote': '添加备注', 'alert.resolve': '解除告警', 'alert.resolve.need': '解除告警必须填写备注。',
  'alert.outcome': '案件处置结果', 'alert.outcome.pick': '— 选择处置结果 —', 'alert.outcome.save': '保存处置结果',
  'alert.outcome.need': '请先选择处置结果。', 'alert.outcome.note': '处置说明（可选）', 'alert.evidence': '证据包', 'alert.done': '已保存。', 'alert.acked_by': '确认人',
  'alert.opened': '首次告警', 'alert.updated': '最近更新', 'alert.started': '开始时间', 'alert.location': '位置',
  'alert.subject': '对象', 'alert.company': '企业', 'alert.outcome_by': '处置人', 'alert.resolved_by': '解除人',
  'alert.nonotif': '没有通知记录。', 'alert.nohistory': '没有记录。', 'alert.nodetails': '没有测量数据。',
  'alert.resolved.note': '此告警已解除，只能添加备注和处置结果。', 'alert.truck': '车辆页面',
  'n.recipient': '接收人', 'n.via': '途径', 'n.channel': '渠道', 'n.state': '状态', 'n.time': '时间', 'n.reason': '原因',
  'ns.pending': '待发送', 'ns.sent': '已发送', 'ns.failed': '失败', 'ns.suppressed': '已抑制',
  'h.fired': '触发告警', 'h.updated': '级别变化', 'h.rule_resolved': '条件消失', 'h.reopened': '再次触发', 'h.acknowledged': '已确认',
  'h.resolved': '已解除', 'h.note': '备注', 'h.escalated': '升级', 'h.notification': '通知', 'h.cap': 'CAP 消息', 'h.outcome': '处置结果',
  'cap.Alert': '发布', 'cap.Update': '更新', 'cap.Cancel': '取消',
  // evidence
  'ev.title': '证据包', 'ev.print': '打印', 'ev.download': '下载证据文件', 'ev.sha': 'SHA-256 摘要',
  'ev.verify': '核验方法：下载文件后执行 sha256sum 文件名，输出应与上面的摘要完全一致。',
  'ev.size': '大小', 'ev.generated': '生成时间', 'ev.window': '时间范围', 'ev.rule': '违规规则', 'ev.threshold': '阈值',
  'ev.measured': '实测值', 'ev.item': '项目', 'ev.trip': '行程', 'ev.notrip': '没有关联行程。', 'ev.track': '轨迹与准运路线',
  'ev.timeline': '篷布 / 车厢 / 载重时间线', 'ev.raw': '原始报文（按存储原样）', 'ev.raw.show': '显示 {n} 条原始报文',
  'ev.time': '时间', 'ev.departed': '出发', 'ev.arrived': '到达', 'ev.distance': '里程', 'ev.duration': '时长',
  'ev.violations': '违规', 'ev.event': '事件', 'ev.provisional': '告警尚未结束（或结束后 10 分钟内）：这是临时证据包，之后再打开会生成最终版本，摘要也会不同。下载的文件与上面的摘要一致。', 'ev.changes': '状态变化明细', 'ev.format': '格式', 'ev.notimeline': '没有传感器数据。',
  // flood
  'flood.title': '防汛值班', 'flood.rain': '雨量站', 'flood.depth': '积水点', 'flood.cap': '已发布的 CAP 预警',
  'flood.nocap': '尚未发布预警。', 'flood.level': '等级', 'flood.name': '名称', 'flood.depth_cm': '积水深度',
  'flood.trend': '变化', 'flood.chart': '24 小时', 'flood.chart.rain': '24 小时逐时雨量（毫米）', 'flood.chart.depth': '24 小时积水深度（厘米）',
  'flood.headline': '标题', 'flood.type': '类型', 'flood.sent': '发布时间', 'flood.xml': 'XML', 'flood.last': '最新数据',
  'flood.select': '点击表格中的一行查看 24 小时曲线。', 'flood.norain': '没有雨量站。', 'flood.nodepth': '没有积水点。',
  'flood.legend.rain': '雨量等级', 'flood.nohistory': '历史数据暂不可用，累计雨量和曲线可能不完整', 'flood.legend.depth': '积水等级',
  // report
  'report.title': '合规报表', 'report.from': '开始日期', 'report.to': '结束日期', 'report.company': '企业',
  'report.all': '全部企业', 'report.run': '查询', 'report.csv': '下载 CSV', 'report.trips': '趟次',
  'report.total': '违规合计', 'report.uncovered': '未密闭分钟', 'report.per100': '每百趟违规', 'report.plate': '车牌',
  'report.trend': '按日趋势', 'report.totals': '合计', 'report.outcomes': '处置结果', 'report.none': '所选时间内没有数据。',
  'report.day': '日期', 'report.badrange': '开始日期不能晚于结束日期。',
  'unit.kmh': '公里/时', 'unit.kg': '千克', 'unit.t': '吨', 'unit.m': '米', 'unit.km': '公里', 'unit.mm': '毫米', 'unit.cm': '厘米',
  'unit.min': '分钟', 'unit.cmh': '厘米/时',
  'ago.s': '{n} 秒前', 'ago.m': '{n} 分钟前', 'ago.h': '{n} 小时前', 'ago.d': '{n} 天前',
  'forbidden.page': '您的角色无权使用此页面。',
};

const en = {
  'app.title': 'Urban management · muck trucks & floods',
  'app.short': 'UrbanWatch',
  'nav.inspect': 'Map', 'nav.alerts': 'Alerts', 'nav.flood': 'Flood', 'nav.report': 'Report',
  'lang.other': '中文', 'lang.label': 'Language',
  'logout': 'Sign out', 'loading': 'Loading…', 'error': 'Something went wrong', 'retry': 'Retry',
  'role.admin': 'Admin', 'role.inspection': 'Inspection', 'role.duty': 'Flood duty', 'role.company': 'Company',
  'live.on': 'Live', 'live.off': 'Connection lost, reconnecting…', 'live.connecting': 'Connecting…',
  'login.title': 'Sign in', 'login.user': 'User name', 'login.pass': 'Password', 'login.submit': 'Sign in',
  'login.busy': 'Signing in…', 'login.locked': 'Too many failed sign-ins: locked. Try again in {m} min.',
  'login.wrong': 'Wrong user name or password.', 'login.forbidden': 'Sign-in refused.', 'login.failed': 'Sign-in failed, please try again later.',
  'login.network': 'Cannot reach the server. Check the network.', 'login.hint': 'Authorised staff only. Every action is recorded.',
  'login.missing': 'Enter your user name and password.',
  'err.401': 'Your session has expired; please sign in again.', 'err.403': 'You may not do this.', 'err.404': 'Not found (or outside your scope).',
  'err.409': 'Its state does not allow this; someone may have handled it already.', 'err.429': 'Too many requests; try again later.', 'err.network': 'Network error; please retry.',
  'state.empty': 'empty', 'state.loaded': 'loaded', 'state.cover_open': 'cover open', 'state.alerting': 'alerting',
  'state.offline': 'offline', 'state.unknown': 'never seen',
  'sev.critical': 'critical', 'sev.major': 'major', 'sev.warning': 'warning', 'sev.minor': 'minor',
  'ast.firing': 'firing', 'ast.acknowledged': 'acknowledged', 'ast.resolved': 'resolved', 'ast.active': 'active (firing + acknowledged)',
  'out.warned': 'warned', 'out.fined': 'fined', 'out.permit_suspended': 'permit suspended', 'out.false_alarm': 'false alarm', 'out.none': 'none yet',
  'rule.uncovered_load': 'uncovered load', 'rule.off_route': 'off route', 'rule.illegal_dumping': 'illegal dumping',
  'rule.outside_permit_hours': 'outside permitted hours', 'rule.no_permit': 'no permit', 'rule.signal_lost': 'signal lost',
  'rule.zone_violation': 'zone violation', 'rule.rainstorm': 'rainstorm', 'rule.heavy_rain_1h': 'heavy rain',
  'rule.waterlogging': 'waterlogging', 'rule.sensor_offline': 'sensor offline',
  'rule.overload': 'overload', 'rule.unwashed_exit': 'unwashed exit (mud on the road)', 'rule.spillage': 'spillage on the road',
  'rain.none': 'none', 'rain.blue': 'blue', 'rain.yellow': 'yellow', 'rain.orange': 'orange', 'rain.red': 'red',
  'depth.none': 'normal', 'depth.warning': 'waterlogging warning', 'depth.road_closure': 'road closure',
  'cover.closed': 'closed', 'cover.open': 'open', 'cover.fault': 'fault', 'cover.unknown': 'unknown',
  'body.down': 'down', 'body.raised': 'raised', 'body.unknown': 'unknown',
  'kind.truck': 'trucks', 'kind.gauge': 'gauges', 'kind.all': 'all',
  'site.construction': 'construction site', 'site.disposal': 'disposal site', 'route': 'permit route', 'district': 'district',
  'tier': 'escalated tier {n}', 'escalated': 'escalated',
  'inspect.title': 'Night inspection', 'inspect.alerts': 'Active truck alerts', 'inspect.noalerts': 'No active alerts.',
  'inspect.near': 'Nearest first (use my position)', 'inspect.near.on': 'Nearest first', 'inspect.near.off': 'By severity',
  'inspect.geo.denied': 'Position unavailable: {e}', 'inspect.geo.busy': 'Finding your position…',
  'inspect.legend': 'Truck states', 'inspect.total': '{n} trucks', 'inspect.details': 'Truck details',
  'inspect.find': 'Find plate', 'inspect.notfound': 'No such truck.', 'inspect.trucks': 'trucks',
  'map.layers': 'Layers',
  'truck.title': 'Truck', 'truck.company': 'Company', 'truck.state': 'State', 'truck.speed': 'Speed', 'truck.time': 'Fix time',
  'truck.sensors': 'Sensors now', 'truck.cover': 'Cover', 'truck.body': 'Body', 'truck.load': 'Load', 'truck.sensors_ts': 'Sensor time',
  'truck.permit': 'Permit', 'truck.nopermit': 'No permit in force.', 'truck.permit.id': 'Number', 'truck.permit.valid': 'Valid',
  'truck.permit.windows': 'Permitted hours', 'truck.permit.in_force': 'In force', 'truck.permit.window_open': 'Inside permitted hours now',
  'truck.permit.origins': 'Construction sites', 'truck.permit.disposal': 'Disposal sites', 'truck.permit.routes': 'Routes', 'truck.permit.corridor': 'Route corridor',
  'truck.track': 'Track, last 30 min', 'truck.notrack': 'No track in the last 30 minutes.', 'truck.alerts': 'Its alerts', 'truck.noalerts': 'No alerts for this truck.',
  'truck.device': 'Device', 'truck.position': 'Position', 'truck.heading': 'Heading',
  'yes': 'yes', 'no': 'no',
  'alerts.title': 'Alert queue', 'alerts.state': 'State', 'alerts.kind': 'Kind', 'alerts.none': 'No alerts match.',
  'alerts.count': '{n} in all', 'alerts.shown': '{n} shown', 'col.severity': 'Severity', 'col.rule': 'Rule', 'col.subject': 'Subject',
  'col.district': 'District', 'col.started': 'Started', 'col.state': 'State', 'col.tier': 'Escalation', 'col.outcome': 'Outcome',
  'col.distance': 'Distance', 'col.company': 'Company',
  'alert.title': 'Alert', 'alert.summary': 'Summary', 'alert.details': 'Measured values and thresholds', 'alert.history': 'History',
  'alert.notifications': 'Notifications', 'alert.cap': 'CAP messages', 'alert.actions': 'Actions', 'alert.ack': 'Acknowledge',
  'alert.ack.note': 'Note for acknowledging (optional)', 'alert.note': 'Note', 'alert.note.ph': 'Type a note: what you found, what was done…',
  'alert.addnote': 'Add note', 'alert.resolve': 'Resolve', 'alert.resolve.need': 'Resolving needs a note.',
  'alert.outcome': 'Case outcome', 'alert.outcome.pick': '— choose an outcome —', 'alert.outcome.save': 'Save outcome',
  'alert.outcome.need': 'Choose an outcome first.', 'alert.outcome.note': 'Note on the outcome (optional)', 'alert.evidence': 'Evidence packet', 'alert.done': 'Saved.', 'alert.acked_by': 'Acknowledged by',
  'alert.opened': 'First fired', 'alert.updated': 'Last updated', 'alert.started': 'Started', 'alert.location': 'Location',
  'alert.subject': 'Subject', 'alert.company': 'Company', 'alert.outcome_by': 'Outcome by', 'alert.resolved_by': 'Resolved by',
  'alert.nonotif': 'No notifications.', 'alert.nohistory': 'No history.', 'alert.nodetails': 'No measurements.',
  'alert.resolved.note': 'This alert is resolved: you can still add notes and the case outcome.', 'alert.truck': 'Truck page',
  'n.recipient': 'Recipient', 'n.via': 'Via', 'n.channel': 'Channel', 'n.state': 'State', 'n.time': 'Time', 'n.reason': 'Reason',
  'ns.pending': 'pending', 'ns.sent': 'sent', 'ns.failed': 'failed', 'ns.suppressed': 'suppressed',
  'h.fired': 'fired', 'h.updated': 'level changed', 'h.rule_resolved': 'condition cleared', 'h.reopened': 'reopened', 'h.acknowledged': 'acknowledged',
  'h.resolved': 'resolved', 'h.note': 'note', 'h.escalated': 'escalated', 'h.notification': 'notification', 'h.cap': 'CAP message', 'h.outcome': 'case outcome',
  'cap.Alert': 'Alert', 'cap.Update': 'Update', 'cap.Cancel': 'Cancel',
  'ev.title': 'Evidence packet', 'ev.print': 'Print', 'ev.download': 'Download the evidence file', 'ev.sha': 'SHA-256 digest',
  'ev.verify': 'To verify: download the file and run sha256sum on it; the output must equal the digest above.',
  'ev.size': 'Size', 'ev.generated': 'Generated', 'ev.window': 'Time window', 'ev.rule': 'Rule broken', 'ev.threshold': 'Threshold',
  'ev.measured': 'Measured', 'ev.item': 'Item', 'ev.trip': 'Trip', 'ev.notrip': 'No trip linked.', 'ev.track': 'Track and permit route',
  'ev.timeline': 'Cover / body / load timeline', 'ev.raw': 'Raw messages as stored', 'ev.raw.show': 'Show {n} raw messages',
  'ev.time': 'Time', 'ev.departed': 'Departed', 'ev.arrived': 'Arrived', 'ev.distance': 'Distance', 'ev.duration': 'Duration',
  'ev.violations': 'Violations', 'ev.event': 'Event', 'ev.provisional': 'The alert has not ended (or ended less than 10 minutes ago): this packet is provisional; opening it later builds the final one, with another digest. The file you download matches the digest above.', 'ev.changes': 'Changes', 'ev.format': 'Format', 'ev.notimeline': 'No sensor data.',
  'flood.title': 'Flood duty', 'flood.rain': 'Rain gauges', 'flood.depth': 'Water-depth points', 'flood.cap': 'CAP warnings issued',
  'flood.nocap': 'No warnings issued.', 'flood.level': 'Level', 'flood.name': 'Name', 'flood.depth_cm': 'Depth',
  'flood.trend': 'Trend', 'flood.chart': '24 h', 'flood.chart.rain': 'Hourly rain, last 24 h (mm)', 'flood.chart.depth': 'Water depth, last 24 h (cm)',
  'flood.headline': 'Headline', 'flood.type': 'Type', 'flood.sent': 'Sent', 'flood.xml': 'XML', 'flood.last': 'Last data',
  'flood.select': 'Click a row of the tables to see its 24 h chart.', 'flood.norain': 'No rain gauges.', 'flood.nodepth': 'No water-depth points.',
  'flood.legend.rain': 'Rain level', 'flood.nohistory': 'Stored history unavailable: totals and charts may be incomplete', 'flood.legend.depth': 'Depth level',
  'report.title': 'Compliance report', 'report.from': 'From', 'report.to': 'To', 'report.company': 'Company',
  'report.all': 'All companies', 'report.run': 'Show', 'report.csv': 'Download CSV', 'report.trips': 'Trips',
  'report.total': 'Violations', 'report.uncovered': 'Minutes uncovered', 'report.per100': 'Per 100 trips', 'report.plate': 'Plate',
  'report.trend': 'Trend by day', 'report.totals': 'Totals', 'report.outcomes': 'Case outcomes', 'report.none': 'No data in this period.',
  'report.day': 'Date', 'report.badrange': 'The start date must not be after the end date.',
  'unit.kmh': 'km/h', 'unit.kg': 'kg', 'unit.t': 't', 'unit.m': 'm', 'unit.km': 'km', 'unit.mm': 'mm', 'unit.cm': 'cm',
  'unit.min': 'min', 'unit.cmh': 'cm/h',
  'ago.s': '{n} s ago', 'ago.m': '{n} min ago', 'ago.h': '{n} h ago', 'ago.d': '{n} d ago',
  'forbidden.page': 'Your role may not use this page.',
};

const dicts = { 'zh-CN': zh, en };

function readCookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return '';
}

function norm(l) {
  if (!l) return '';
  return String(l).toLowerCase().startsWith('en') ? 'en' : 'zh-CN';
}

// storedLang is the language chosen on this browser, or ''.
export function storedLang() {
  let v = '';
  try { v = localStorage.getItem('uw_lang') || ''; } catch { /* private mode */ }
  return norm(v || readCookie('uw_lang'));
}

let current = storedLang() || 'zh-CN';

export function lang() { return current; }

// useLang sets the language for this page without storing it (me.lang as
// the default when nothing is stored).
export function useLang(l) {
  current = norm(l) || 'zh-CN';
  document.documentElement.lang = current;
}

// setLang stores the choice in localStorage and the uw_lang cookie.
export function setLang(l) {
  current = norm(l) || 'zh-CN';
  try { localStorage.setItem('uw_lang', current); } catch { /* private mode */ }
  document.cookie = `uw_lang=${encodeURIComponent(current)}; Path=/; Max-Age=31536000; SameSite=Lax`;
  document.documentElement.lang = current;
}

// t translates key, filling {name} placeholders from vars.
export function t(key, vars) {
  let s = dicts[current][key] ?? zh[key] ?? key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

// has reports whether key is in the dictionary.
export function has(key) { return key in dicts[current]; }

// tr translates key when it is known, else returns fallback (or the raw
// value) so unknown ids stay visible instead of vanishing.
export function tr(prefix, id, fallback) {
  if (id === undefined || id === null || id === '') return fallback ?? '';
  const k = prefix + '.' + id;
  return k in dicts[current] ? dicts[current][k] : (fallback || String(id));
}

// ruleName translates a rule id; zone_violation:{zone} keeps the zone.
export function ruleName(id, fallback) {
  if (!id) return fallback || '';
  const [base, extra] = String(id).split(/:(.*)/s);
  const name = tr('rule', base, fallback || id);
  return extra ? `${name} (${extra})` : name;
}

// serverMessage picks this language's half of a bilingual server message
// ("english / 中文").
export function serverMessage(msg) {
  if (!msg) return '';
  const parts = String(msg).split(' / ');
  if (parts.length < 2) return msg;
  const cjk = /[\u4e00-\u9fff]/;
  const zhPart = parts.find((p) => cjk.test(p));
  const enPart = parts.find((p) => !cjk.test(p));
  return (current === 'en' ? enPart : zhPart) || msg;
}

// applyI18n fills every [data-i18n] element's text (and data-i18n-ph
// placeholders, data-i18n-title titles) under root.
export function applyI18n(root = document) {
  for (const e of root.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  for (const e of root.querySelectorAll('[data-i18n-ph]')) e.placeholder = t(e.dataset.i18nPh);
  for (const e of root.querySelectorAll('[data-i18n-title]')) e.title = t(e.dataset.i18nTitle);
}
