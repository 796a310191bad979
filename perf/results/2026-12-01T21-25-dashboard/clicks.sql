INSERT INTO dashbench_fdddf539.clicks (event_id, ts, ts_ms, batch_id, node, code, status, host, domain, ip_prefix,
    country, city, device, browser, os, referrer_host, accept_language, language,
    is_bot, is_preview, visitor_hash, org_id, rule)
SELECT event_id, ts, ts_ms, batch_id, node, code, 301, domain, domain, ip_prefix,
       country, city, device, browser, os, referrer_host, accept_language, language,
       is_bot, is_preview, visitor_hash, 1, 0
FROM
(
    -- perf/dashboard.sh's clicks: 10000000 clicks of organization 1 over the 30 days before
    -- 1796160372, as the sidecar stores them. Every value is a hash of the row number (one
    -- salt per column), so a run is repeatable. Filled in by perf/dashboard.sh.
    WITH
        ['US', 'GB', 'DE', 'FR', 'IN', 'BR', 'CA', 'JP', 'ES', 'IT',
         'NL', 'AU', 'MX', 'PL', 'SE', 'KR', 'TR', 'ID', 'ZA', 'AR'] AS countries,
        ['en', 'en', 'de', 'fr', 'hi', 'pt', 'en', 'ja', 'es', 'it',
         'nl', 'en', 'es', 'pl', 'sv', 'ko', 'tr', 'id', 'en', 'es'] AS languages,
        -- Three cities per country, in the countries' order.
        ['New York', 'Los Angeles', 'Chicago', 'London', 'Manchester', 'Birmingham',
         'Berlin', 'Munich', 'Hamburg', 'Paris', 'Lyon', 'Marseille',
         'Mumbai', 'Delhi', 'Bengaluru', 'Sao Paulo', 'Rio de Janeiro', 'Brasilia',
         'Toronto', 'Vancouver', 'Montreal', 'Tokyo', 'Osaka', 'Yokohama',
         'Madrid', 'Barcelona', 'Valencia', 'Rome', 'Milan', 'Naples',
         'Amsterdam', 'Rotterdam', 'Utrecht', 'Sydney', 'Melbourne', 'Brisbane',
         'Mexico City', 'Guadalajara', 'Monterrey', 'Warsaw', 'Krakow', 'Wroclaw',
         'Stockholm', 'Gothenburg', 'Malmo', 'Seoul', 'Busan', 'Incheon',
         'Istanbul', 'Ankara', 'Izmir', 'Jakarta', 'Surabaya', 'Bandung',
         'Johannesburg', 'Cape Town', 'Durban', 'Buenos Aires', 'Cordoba', 'Rosario'] AS cities,
        ['google.com', 't.co', 'facebook.com', 'linkedin.com', 'news.ycombinator.com',
         'reddit.com', 'instagram.com', 'bing.com', 'duckduckgo.com', 'youtube.com',
         'mail.google.com', 'outlook.live.com'] AS referrers,
        ['Googlebot', 'bingbot', 'AhrefsBot', 'Slackbot-LinkExpanding', 'Twitterbot', 'facebookexternalhit'] AS bots,
        cityHash64(number, 1) AS h1,
        cityHash64(number, 2) AS h2,
        cityHash64(number, 3) AS h3,
        cityHash64(number, 4) AS h4,
        cityHash64(number, 5) AS h5,
        -- The link: log-uniform over the ranks, so rank k gets clicks in proportion to
        -- 1 / (k + 1) (Zipf, s = 1): the hottest about 6 % of them, the coldest a few.
        toUInt32(least(floor(exp(toFloat64(h1 % 1000000000) / 1e9 * log(100000 + 1))) - 1, toFloat64(100000 - 1))) AS rank,
        toDateTime(1796160372 - h2 % (30 * 86400)) AS ts,
        -- Countries skewed towards the first ones, a city of the country, its language.
        toUInt32(floor(pow(toFloat64(h3 % 1000000) / 1e6, 2) * 20)) + 1 AS ci,
        (h4 % 100) < 5 AS bot,
        h5 % 100 AS dv,
        multiIf(dv < 58, 'mobile', dv < 95, 'desktop', 'tablet') AS human_device,
        multiIf(human_device = 'mobile', if(h4 % 7 < 3, 'iOS', 'Android'),
                human_device = 'tablet', if(h4 % 7 < 4, 'iPadOS', 'Android'),
                ['Windows', 'Windows', 'Windows', 'Mac OS X', 'Mac OS X', 'Linux', 'Chrome OS'][h4 % 7 + 1]) AS human_os,
        multiIf(human_os IN ('iOS', 'iPadOS'), if(h3 % 5 < 4, 'Mobile Safari', 'Chrome Mobile iOS'),
                human_os = 'Android', if(h3 % 5 < 4, 'Chrome Mobile', 'Samsung Internet'),
                human_os = 'Mac OS X', if(h3 % 5 < 3, 'Safari', 'Chrome'),
                ['Chrome', 'Chrome', 'Chrome', 'Firefox', 'Edge'][h3 % 5 + 1]) AS human_browser
    SELECT
        toFixedString(hex(cityHash64(number, 6)), 16) AS event_id,
        ts,
        toUInt64(ts) * 1000 + h2 % 1000 AS ts_ms,
        toFixedString(hex(cityHash64(intDiv(number, 1000), 7)), 16) AS batch_id,
        if(number % 2 = 0, 'edge-1', 'edge-2') AS node,
        concat('198.51.', toString(h3 % 256), '.0') AS ip_prefix,
        countries[ci] AS country,
        cities[(ci - 1) * 3 + toUInt32(floor(pow(toFloat64(h4 % 1000) / 1000, 2) * 3)) + 1] AS city,
        if(bot, 'bot', human_device) AS device,
        if(bot, bots[h5 % 6 + 1], human_browser) AS browser,
        if(bot, 'Other', human_os) AS os,
        -- 40 % direct, then the big referrers, then a long tail of blogs.
        multiIf(bot OR (h2 % 100) < 40, '',
                (h2 % 100) < 85, referrers[toUInt32(floor(pow(toFloat64(h1 % 1000) / 1000, 2) * 12)) + 1],
                concat('blog', toString(h1 % 2000), '.example.org')) AS referrer_host,
        concat(languages[ci], '-', countries[ci], ',', languages[ci], ';q=0.9') AS accept_language,
        languages[ci] AS language,
        toUInt8(bot) AS is_bot,
        toUInt8(bot AND h5 % 6 >= 3) AS is_preview,
        -- Three million people, some coming back.
        cityHash64(h3 % 3000000) AS visitor_hash,
        rank
    FROM numbers(10000000)
) ANY LEFT JOIN dashbench_fdddf539.bench_links USING rank
