(function(){
// The report's one script, allowed by its sha256 in the Content-Security-Policy. It reads the page only:
// data stays in escaped HTML, never in script. It marks on the body element what a browser test checks.
var errors=0;
window.addEventListener('error',function(){errors++;});
function openTarget(){
  // a drill-down link (#entity-X, #network-N1, #alert-3) opens the <details> it points into
  var id=decodeURIComponent(location.hash.slice(1)), el=id&&document.getElementById(id);
  if(el&&el.hidden){  // an alert row the filters hide: clear them so the link lands
    document.querySelectorAll('#alert-filter,select[data-filter]').forEach(function(i){i.value='';});
    var f=document.getElementById('alert-filter');if(f)f.dispatchEvent(new Event('input'));
  }
  for(var node=el;node;node=node.parentElement){if(node.tagName==='DETAILS')node.open=true;}
  if(el)el.scrollIntoView();
}
function setupTable(table){
  var body=table.tBodies[0], rows=Array.prototype.slice.call(body.rows);
  // the text filter, and one <select data-filter="X"> per row attribute data-X (typology, status)
  var text=document.getElementById('alert-filter'), selects=document.querySelectorAll('select[data-filter]');
  var count=document.getElementById('alert-count');
  function apply(){
    var q=(text&&text.value||'').toLowerCase().trim(), shown=0;
    rows.forEach(function(r){
      var keep=!q||r.textContent.toLowerCase().indexOf(q)>=0;
      selects.forEach(function(s){if(s.value&&r.getAttribute('data-'+s.getAttribute('data-filter'))!==s.value)keep=false;});
      r.hidden=!keep; if(keep)shown++;
    });
    if(count)count.textContent=shown.toLocaleString('en');
    document.body.setAttribute('data-rows-shown',shown);
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,col){
    if(!th.hasAttribute('data-sort'))return;
    th.tabIndex=0; th.title='sort';
    function sort(){
      var numeric=th.getAttribute('data-sort')==='number';
      var dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
      Array.prototype.forEach.call(th.parentNode.cells,function(c){c.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort',dir===1?'ascending':'descending');
      function key(r){var c=r.cells[col],v=c.getAttribute('data-value');v=v===null?c.textContent.trim():v;
        return numeric?parseFloat(v):v.toLowerCase();}
      rows.sort(function(a,b){var x=key(a),y=key(b);return x<y?-dir:x>y?dir:0;});
      rows.forEach(function(r){body.appendChild(r);});
      document.body.setAttribute('data-sorted-by',th.textContent.trim()+' '+th.getAttribute('aria-sort'));
    }
    th.addEventListener('click',sort);
    th.addEventListener('keydown',function(e){if(e.key==='Enter')sort();});
  });
  if(text)text.addEventListener('input',apply);
  selects.forEach(function(s){s.addEventListener('change',apply);});
  apply();
}
document.addEventListener('DOMContentLoaded',function(){
  var table=document.getElementById('alert-table');
  if(table)setupTable(table);
  window.addEventListener('hashchange',openTarget);
  openTarget();
});
window.addEventListener('load',function(){
  var charts=document.querySelectorAll('svg.chart'),drawn=0;
  charts.forEach(function(c){var b=c.getBoundingClientRect();
    if(b.width>0&&b.height>0&&c.querySelector('rect,circle,path'))drawn++;});
  var body=document.body;body.setAttribute('data-charts',charts.length);
  body.setAttribute('data-charts-drawn',drawn);body.setAttribute('data-errors',errors);
});
})();
