SELECT *
FROM websession
WHERE coalesce((lower(CAST(`Url` AS STRING)) LIKE lower('%/flash\\_install.php%') ESCAPE '\\' OR lower(CAST(`Url` AS STRING)) LIKE lower('%/install\\_flash\\_player.exe') ESCAPE '\\') AND NOT coalesce(lower(CAST(`DstHostname` AS STRING)) LIKE lower('%.adobe.com') ESCAPE '\\', false), false);
