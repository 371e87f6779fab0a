"""The demo brand's fixed world: cities, stores, staff names and a seasonal fruit catalogue."""

from __future__ import annotations

from dataclasses import dataclass

BRAND = "鲜果时光"
ALL_YEAR = tuple(range(1, 13))


@dataclass(frozen=True)
class City:
    name: str
    code: str
    region: str
    weight: float
    districts: tuple[str, ...]


CITIES = (
    City(
        "上海", "SH", "华东", 3.0, ("徐汇", "静安", "浦东", "长宁", "闵行", "杨浦", "普陀", "黄浦")
    ),
    City("杭州", "HZ", "华东", 2.0, ("西湖", "滨江", "拱墅", "上城", "余杭")),
    City("南京", "NJ", "华东", 1.5, ("鼓楼", "玄武", "建邺", "江宁")),
    City("苏州", "SU", "华东", 1.5, ("姑苏", "工业园区", "吴中", "相城")),
    City("深圳", "SZ", "华南", 2.5, ("南山", "福田", "罗湖", "宝安", "龙华")),
    City("广州", "GZ", "华南", 2.0, ("天河", "越秀", "海珠", "番禺")),
    City("北京", "BJ", "华北", 2.5, ("朝阳", "海淀", "东城", "西城", "丰台")),
    City("成都", "CD", "西南", 2.0, ("锦江", "武侯", "高新", "成华")),
    City("重庆", "CQ", "西南", 1.0, ("渝中", "江北", "南岸")),
)


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    category: str
    price: str  # yuan; per 500 g (一斤) for weighed fruit
    cost_ratio: float
    season: tuple[int, ...]
    popularity: float
    weighed: bool
    #: Days before ``today`` the product launched; recent launches are flagged is_new.
    launched_days_ago: int = 900


PRODUCTS = (
    DemoProduct("FF-CHERRY", "智利车厘子 JJ级", "进口水果", "59.90", 0.62, (12, 1, 2), 1.3, True),
    DemoProduct("FF-LYCHEE", "妃子笑荔枝", "时令水果", "19.90", 0.55, (6, 7), 1.3, True),
    DemoProduct("FF-DURIAN", "金枕榴莲", "进口水果", "39.90", 0.65, (5, 6, 7, 8, 9), 0.7, True),
    DemoProduct("FF-MANGO", "台农芒果", "时令水果", "12.90", 0.55, (4, 5, 6, 7, 8), 0.9, True),
    DemoProduct(
        "FF-STRAWBERRY", "丹东草莓", "时令水果", "29.90", 0.58, (12, 1, 2, 3, 4), 1.1, True
    ),
    DemoProduct("FF-APPLE", "烟台红富士苹果", "时令水果", "8.90", 0.5, ALL_YEAR, 0.8, True),
    DemoProduct("FF-BANANA", "海南香蕉", "时令水果", "5.90", 0.45, ALL_YEAR, 0.7, True),
    DemoProduct(
        "FF-KIWI", "徐香猕猴桃", "时令水果", "12.90", 0.52, (9, 10, 11, 12, 1, 2), 0.7, True
    ),
    DemoProduct("FF-WATERMELON", "麒麟西瓜", "时令水果", "3.90", 0.45, (5, 6, 7, 8, 9), 1.2, True),
    DemoProduct("FF-GRAPE", "阳光玫瑰葡萄", "时令水果", "29.90", 0.6, (7, 8, 9, 10, 11), 0.8, True),
    DemoProduct("FF-ORANGE", "赣南脐橙", "时令水果", "7.90", 0.5, (11, 12, 1, 2, 3), 0.9, True),
    DemoProduct("FF-PITAYA", "红心火龙果", "时令水果", "9.90", 0.5, ALL_YEAR, 0.6, True, 40),
    DemoProduct("FF-BLUEBERRY", "秘鲁蓝莓 125g", "进口水果", "19.90", 0.6, ALL_YEAR, 0.8, False),
    DemoProduct("FF-CUT-MIX", "缤纷果切", "果切", "19.90", 0.4, ALL_YEAR, 1.0, False),
    DemoProduct("FF-CUT-MELON", "西瓜果切", "果切", "12.90", 0.35, (5, 6, 7, 8, 9), 1.0, False),
    DemoProduct("FF-CUT-DURIAN", "榴莲果肉盒", "果切", "59.90", 0.6, (5, 6, 7, 8, 9), 0.4, False),
    DemoProduct("FF-CUT-SUNROSE", "阳光玫瑰果切", "果切", "22.90", 0.45, ALL_YEAR, 0.8, False, 30),
    DemoProduct("FF-JUICE-ORANGE", "鲜榨橙汁", "果汁", "15.00", 0.3, ALL_YEAR, 0.6, False),
    DemoProduct(
        "FF-GIFT-CHERRY", "车厘子礼盒 2.5kg", "礼盒", "298.00", 0.65, (12, 1, 2), 0.5, False
    ),
    DemoProduct("FF-GIFT-MOON", "中秋鲜果礼盒", "礼盒", "198.00", 0.55, (9,), 0.5, False),
    DemoProduct("FF-GIFT-PREMIUM", "进口鲜果礼盒", "礼盒", "168.00", 0.55, ALL_YEAR, 0.15, False),
)

#: Weight of a product outside its season, relative to its popularity in season.
OFF_SEASON = 0.03

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏飞琳晨欣怡婷雪梅浩宇轩子涵思雨佳诗梓萱一诺欣然可馨博文俊杰天佑子墨晓彤"
NICKNAMES = (
    "爱吃水果的猫",
    "果果",
    "小橙子",
    "草莓味的夏天",
    "Lily",
    "Amy",
    "阿杰",
    "晴天",
    "木木",
    "Sunny",
    "大白",
    "小鱼儿",
    "芒果控",
    "樱桃小丸子",
    "momo",
    "Coco",
    "荔枝妈妈",
    "西瓜太郎",
    "柠檬精",
    "Kiki",
    "一颗蓝莓",
    "快乐小王",
    "Grace",
    "阿May",
    "陈先生",
    "林小姐",
    "Tina",
    "果粉一号",
    "Joe",
    "蜜桃乌龙",
    "安安",
)
PHONE_PREFIXES = (
    "138",
    "139",
    "135",
    "136",
    "137",
    "150",
    "151",
    "152",
    "158",
    "159",
    "186",
    "187",
    "188",
    "177",
    "180",
    "181",
    "189",
    "199",
    "133",
    "153",
    "173",
    "176",
    "183",
    "185",
    "191",
    "198",
)
MEMBER_TIERS = ("普通会员", "银卡会员", "金卡会员", "黑金会员")
MEMBER_TIER_WEIGHTS = (0.55, 0.27, 0.14, 0.04)
REFUND_REASONS = ("品质问题", "少称缺斤", "配送超时", "不想要了", "果品损坏")
