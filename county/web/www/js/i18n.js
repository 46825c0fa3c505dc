// The dashboard's own words, Chinese first. Figures' names, codes' labels and
// table headings come from the reports themselves (their `lang`), so this
// dictionary holds only the page's chrome.
const DICT = {
  zh: {
    app: '班班通使用监测', login: '登录', user: '用户名', password: '密码',
    login_failed: '用户名或密码错误', throttled: '尝试次数过多，请稍后再试', expired: '会话已过期，请重新登录',
    logout: '退出', lang_switch: 'English', county: '县区概览', wall: '大屏', school: '学校', terminal: '终端',
    week: '周', this_week: '本周', last_week: '上周', last_30: '近30天', prev: '上一周期', next: '下一周期',
    period: '统计期', vs_prev: '较上一周期', no_prev: '上一周期无数据', no_data: '无数据',
    trend: '每周趋势', ranking: '学校排名', areas: '城区 / 镇区 / 乡村对比', balance: '校际差异系数',
    townships: '乡镇（街道）', all_townships: '全部乡镇', drill: '查看学校', section_primary: '小学', section_junior: '初中',
    cv: '差异系数', quality_max: '优质均衡线', basic_max: '基本均衡线', verdict: '结论',
    classrooms: '教室状态（实时）', heatmap: '教室 × 节次使用热力图（分钟）', idle: '闲置设备', faults: '故障',
    record_download: '下载使用记录表（Excel）', in_use: '使用中', on: '开机空闲', off: '关机/离线', never: '从未上报',
    fault: '故障', periph_missing: '外设缺失', now: '截至', none: '无',
    timeline: '当日时间线', health: '健康状况', peripherals: '外设', present: '已连接', expected: '应配', missing: '缺失',
    standby: '待机', idle_state: '开机空闲', active: '使用', interactive: '互动', date: '日期',
    last_heard: '最后通信', last_active: '最后使用', online: '在线', offline: '离线', agent_version: '终端版本',
    state: '状态', uptime: '运行时长', cpu: 'CPU', mem: '可用内存', disk: '可用磁盘', temp: '温度', spool: '缓存条数',
    clock: '时钟同步', yes: '是', no: '否', hours: '小时', minutes: '分钟', live: '实时在线', refresh: '每分钟刷新',
    error: '出错了', forbidden: '无权查看', not_found: '未找到', back: '返回', school_figures: '本校指标',
    terminals_total: '终端', totals: '合计', period_n: '第{n}节', open: '未恢复', since: '开始', cleared: '恢复',
    fault_silent: '长期未上报', fault_overheat: '温度过高', fault_disk_low: '磁盘空间不足', fault_periph_missing: '外设缺失',
    fault_projector_error: '投影机故障', fault_lamp_hours: '灯泡超时', fault_clock_skew: '时钟偏差', fault_spool_drop: '缓存溢出丢弃', fault_offline: '离线',
  },
  en: {
    app: 'Classroom terminal monitor', login: 'Sign in', user: 'User name', password: 'Password',
    login_failed: 'Wrong user name or password', throttled: 'Too many attempts; try again later', expired: 'Your session ended; please sign in again',
    logout: 'Sign out', lang_switch: '中文', county: 'County', wall: 'Wall screen', school: 'School', terminal: 'Terminal',
    week: 'Week', this_week: 'This week', last_week: 'Last week', last_30: 'Last 30 days', prev: 'Previous period', next: 'Next period',
    period: 'Period', vs_prev: 'vs previous period', no_prev: 'no previous data', no_data: 'No data',
    trend: 'Weekly trend', ranking: 'School ranking', areas: 'Urban / town / rural', balance: 'Inter-school variation (CV)',
    townships: 'Townships', all_townships: 'All townships', drill: 'Schools', section_primary: 'Primary', section_junior: 'Junior',
    cv: 'CV', quality_max: 'Quality line', basic_max: 'Basic line', verdict: 'Verdict',
    classrooms: 'Classrooms (live)', heatmap: 'Classroom × lesson heatmap (minutes)', idle: 'Idle equipment', faults: 'Faults',
    record_download: 'Download the usage record (Excel)', in_use: 'In use', on: 'On, idle', off: 'Off / offline', never: 'Never reported',
    fault: 'Fault', periph_missing: 'Peripheral missing', now: 'As of', none: 'None',
    timeline: 'The day', health: 'Health', peripherals: 'Peripherals', present: 'Present', expected: 'Expected', missing: 'Missing',
    standby: 'Standby', idle_state: 'Idle', active: 'Active', interactive: 'Interactive', date: 'Date',
    last_heard: 'Last heard', last_active: 'Last active', online: 'Online', offline: 'Offline', agent_version: 'Agent',
    state: 'State', uptime: 'Uptime', cpu: 'CPU', mem: 'Free memory', disk: 'Free disk', temp: 'Temperature', spool: 'Spooled',
    clock: 'Clock synced', yes: 'yes', no: 'no', hours: 'h', minutes: 'min', live: 'Live', refresh: 'refreshed every minute',
    error: 'Something went wrong', forbidden: 'Not in your scope', not_found: 'Not found', back: 'Back', school_figures: 'This school',
    terminals_total: 'Terminals', totals: 'Total', period_n: 'Lesson {n}', open: 'open', since: 'Since', cleared: 'Cleared',
    fault_silent: 'Silent', fault_overheat: 'Overheating', fault_disk_low: 'Disk low', fault_periph_missing: 'Peripheral missing',
    fault_projector_error: 'Projector error', fault_lamp_hours: 'Lamp hours', fault_clock_skew: 'Clock skew', fault_spool_drop: 'Spool dropped', fault_offline: 'Offline',
  },
};

const KEY = 'bbt.lang';
export let lang = (() => {
  try { const v = localStorage.getItem(KEY); return v === 'en' ? 'en' : 'zh'; } catch (e) { return 'zh'; }
})();

export function setLang(l) {
  lang = l === 'en' ? 'en' : 'zh';
  try { localStorage.setItem(KEY, lang); } catch (e) { /* private mode: this page only */ }
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
}

export function t(key, vars) {
  let s = DICT[lang][key] ?? DICT.zh[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replace(`{${k}}`, v);
  return s;
}
