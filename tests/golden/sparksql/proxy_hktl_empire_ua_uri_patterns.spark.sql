SELECT *
FROM websession
WHERE coalesce(lower(CAST(`HttpUserAgent` AS STRING)) = lower('Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko') AND (lower(CAST(`Url` AS STRING)) = lower('/admin/get.php') OR lower(CAST(`Url` AS STRING)) = lower('/news.php') OR lower(CAST(`Url` AS STRING)) = lower('/login/process.php')) AND lower(CAST(`HttpRequestMethod` AS STRING)) = lower('POST'), false);
